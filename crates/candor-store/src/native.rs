//! Statements run in place on a rusqlite connection (the SQLite writer and readers), with the
//! `$N` parameters of `sql.rs` and errors mapped as sqlx's are.

use candor_core::store::{StoreError, StoreResult};
use rusqlite::types::ToSql;
use rusqlite::{Connection, ErrorCode, Row, Statement};

/// Opens an existing database file: never creates one (a file that disappeared must fail,
/// not be replaced by an empty database). One thread uses a connection at a time.
pub(crate) fn open_existing(path: &std::path::Path) -> StoreResult<Connection> {
    use rusqlite::OpenFlags;
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))
}

pub(crate) fn db_error(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, message)
            if f.code == ErrorCode::ConstraintViolation
                && matches!(
                    f.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                ) =>
        {
            StoreError::Conflict(message.clone().unwrap_or_else(|| e.to_string()))
        }
        _ => StoreError::Unavailable(failure(&e)),
    }
}

/// SQLite's words for a failure, and for the failures of the disk under the store, what they
/// mean to an operator: the log line under the trace id must say "the disk is full", not only
/// SQLite's "database or disk is full".
pub(crate) fn failure(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => {
            format!("the disk holding the store is full ({e}): nothing of this write was kept; free space on it")
        }
        Some(ErrorCode::SystemIoFailure) => format!("the disk holding the store failed a read or a write ({e})"),
        _ => e.to_string(),
    }
}

/// The names SQLite gives `$1`…`$20` (it numbers named parameters by first appearance, so they
/// are bound by name: the statements of `sql.rs` are written for PostgreSQL's positional `$N`).
const NAMES: [&str; 20] = [
    "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15", "$16", "$17",
    "$18", "$19", "$20",
];

fn bound<'c>(conn: &'c Connection, statement: &str, args: &[&dyn ToSql]) -> StoreResult<rusqlite::CachedStatement<'c>> {
    let mut stmt = conn.prepare_cached(statement).map_err(db_error)?;
    bind(&mut stmt, args)?;
    Ok(stmt)
}

fn bind(stmt: &mut Statement<'_>, args: &[&dyn ToSql]) -> StoreResult<()> {
    if stmt.parameter_count() != args.len() || args.len() > NAMES.len() {
        return Err(StoreError::Unavailable(format!(
            "a statement takes {} parameters, {} were given",
            stmt.parameter_count(),
            args.len()
        )));
    }
    for (name, arg) in NAMES.iter().zip(args) {
        let index = stmt
            .parameter_index(name)
            .map_err(db_error)?
            .ok_or_else(|| StoreError::Unavailable(format!("a statement has no parameter {name}")))?;
        stmt.raw_bind_parameter(index, arg).map_err(db_error)?;
    }
    Ok(())
}

/// Runs a statement that returns no rows; returns the number of rows it changed.
pub(crate) fn execute(conn: &Connection, statement: &str, args: &[&dyn ToSql]) -> StoreResult<u64> {
    let n = bound(conn, statement, args)?.raw_execute().map_err(db_error)?;
    Ok(n as u64)
}

/// Runs a query; maps its first row, if any.
pub(crate) fn first_row<T>(
    conn: &Connection,
    statement: &str,
    args: &[&dyn ToSql],
    map: impl FnOnce(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut stmt = bound(conn, statement, args)?;
    let mut rows = stmt.raw_query();
    match rows.next().map_err(db_error)? {
        Some(row) => map(row).map(Some),
        None => Ok(None),
    }
}

/// Runs a query; maps every row.
pub(crate) fn all_rows<T>(
    conn: &Connection,
    statement: &str,
    args: &[&dyn ToSql],
    mut map: impl FnMut(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = bound(conn, statement, args)?;
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db_error)? {
        out.push(map(row)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::Col;

    fn table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a TEXT PRIMARY KEY, b INTEGER, c TEXT)").unwrap();
        conn
    }

    #[test]
    fn parameters_are_bound_by_their_number_not_their_place_in_the_text() {
        let conn = table();
        // SQLite numbers `$N` by first appearance: here `$3` would be parameter 1.
        execute(&conn, "INSERT INTO t (c, b, a) VALUES ($3, $2, $1)", &[&"a1", &7_i64, &"c1"]).unwrap();
        let row = first_row(&conn, "SELECT a, b, c FROM t WHERE b = $1 AND a = $2", &[&7_i64, &"a1"], |r| {
            Ok((r.text("a")?, r.int("b")?, r.text("c")?))
        })
        .unwrap();
        assert_eq!(row, Some(("a1".to_string(), 7, "c1".to_string())));
        assert_eq!(first_row(&conn, "SELECT a FROM t WHERE a = $1", &[&"none"], |r| r.text("a")).unwrap(), None);
        let all = all_rows(&conn, "SELECT a FROM t WHERE b >= $1 ORDER BY a", &[&0_i64], |r| r.text("a")).unwrap();
        assert_eq!(all, ["a1"]);
    }

    #[test]
    fn a_wrong_number_of_arguments_is_an_error_not_a_stale_binding() {
        let conn = table();
        let e = execute(&conn, "INSERT INTO t (a, b) VALUES ($1, $2)", &[&"a1"]).unwrap_err();
        assert!(e.to_string().contains("takes 2 parameters, 1 were given"), "{e}");
    }

    #[test]
    fn a_duplicate_key_is_a_conflict_and_other_failures_are_unavailable() {
        let conn = table();
        execute(&conn, "INSERT INTO t (a) VALUES ($1)", &[&"a1"]).unwrap();
        match execute(&conn, "INSERT INTO t (a) VALUES ($1)", &[&"a1"]) {
            Err(StoreError::Conflict(m)) => assert!(m.contains("UNIQUE constraint failed: t.a"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            execute(&conn, "INSERT INTO nope (a) VALUES ($1)", &[&"a1"]),
            Err(StoreError::Unavailable(_))
        ));
    }

    #[test]
    fn a_missing_database_file_is_an_error_not_a_new_empty_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone.db");
        let e = open_existing(&path).unwrap_err();
        assert!(e.to_string().contains("gone.db"), "{e}");
        assert!(!path.exists());
    }
}
