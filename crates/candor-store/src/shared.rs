//! The store implementation shared by SQLite and PostgreSQL: the same statements (written with
//! `$N` parameters, which both accept), the same row mapping and the same transactions, except
//! for the request paths' writes, which each backend runs through its `crate::Writes`.
//!
//! `store_impl!` expands inside each backend's module, which provides `MIGRATOR`, `applied_versions()`,
//! `reads()` and `writes()` (the backend's `crate::Reads` and `crate::Writes`: the request paths'
//! reads by key and write transactions) and `sweep_step()`, which runs one of a sweep's
//! statements (`sweep_steps`) its own way.

macro_rules! store_impl {
    ($Store:ty, $Row:ty, $Conn:ty) => {
        use crate::{corrupt, to_json, unavailable};
        use async_trait::async_trait;
        use candor_core::audit::AuditRecord;
        use candor_core::clock::UnixTime;
        use candor_core::model::*;
        use candor_core::store::*;
        use sqlx::Row;

        impl $Store {
            /// Applies every migration this build knows; returns the versions now applied.
            /// (On PostgreSQL sqlx holds an advisory lock while migrating, so nodes started
            /// together migrate once.)
            pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
                MIGRATOR.run(&self.pool).await.map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))?;
                self.applied_versions().await
            }

            /// Refuses a schema this build does not know: older (run `candor migrate`) or newer (upgrade Candor).
            pub async fn check_schema(&self) -> Result<(), StoreError> {
                crate::check_versions(&self.applied_versions().await?, &MIGRATOR)
            }

            /// Does `schema` about the migrations of a freshly opened store.
            async fn prepare(self, schema: crate::Schema) -> Result<Self, StoreError> {
                match schema {
                    crate::Schema::Migrate => {
                        self.migrate().await?;
                    }
                    crate::Schema::Require => self.check_schema().await?,
                }
                Ok(self)
            }
        }

        fn client_from(row: &$Row) -> StoreResult<Client> {
            crate::rows::client(row)
        }

        fn user_from(row: &$Row) -> StoreResult<User> {
            crate::rows::user(row)
        }

        fn code_from(row: &$Row) -> StoreResult<CodeRecord> {
            crate::rows::code(row)
        }

        fn access_from(row: &$Row) -> StoreResult<AccessTokenRecord> {
            crate::rows::access(row)
        }

        fn refresh_from(row: &$Row) -> StoreResult<RefreshTokenRecord> {
            crate::rows::refresh(row)
        }

        /// `sql` with a client's columns bound as `$1` (id) to `$21` (secret_sealed), in
        /// the order of `insert_client`: everything but its creation time.
        fn client_query<'q>(
            sql: &'q str,
            c: &'q Client,
        ) -> StoreResult<
            sqlx::query::Query<
                'q,
                <$Conn as sqlx::Connection>::Database,
                <<$Conn as sqlx::Connection>::Database as sqlx::Database>::Arguments<'q>,
            >,
        > {
            Ok(sqlx::query(sql)
                .bind(&c.id)
                .bind(&c.name)
                .bind(&c.secret_hash)
                .bind(to_json(&c.redirect_uris)?)
                .bind(to_json(&c.grant_types)?)
                .bind(c.auth_method.as_str())
                .bind(to_json(&c.scopes)?)
                .bind(c.require_pkce)
                .bind(c.allow_plain_pkce)
                .bind(c.id_token_alg.as_str())
                .bind(c.always_issue_refresh_token)
                .bind(c.jwks.as_ref().map(|j| j.to_string()))
                .bind(c.require_par)
                .bind(c.access_token_format.as_str())
                .bind(to_json(&c.resources)?)
                .bind(c.require_dpop)
                .bind(to_json(&c.logout.post_logout_redirect_uris)?)
                .bind(&c.logout.backchannel_uri)
                .bind(c.logout.backchannel_session_required)
                .bind(&c.registration_token_hash)
                .bind(&c.secret_sealed))
        }

        #[async_trait]
        impl ClientStore for $Store {
            async fn client(&self, id: &str) -> StoreResult<Option<Client>> {
                crate::Reads::one(self.reads(), crate::sql::CLIENT, id, |row| crate::rows::client(row)).await
            }

            async fn insert_client(&self, c: &Client) -> StoreResult<()> {
                let sql = "INSERT INTO clients (id, name, secret_hash, redirect_uris, grant_types, auth_method, scopes,
                        require_pkce, allow_plain_pkce, id_token_alg, always_issue_refresh_token, jwks, require_par,
                        access_token_format, resources, require_dpop, post_logout_redirect_uris, backchannel_logout_uri,
                        backchannel_logout_session_required, registration_token_hash, secret_sealed, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)";
                client_query(sql, c)?.bind(c.created_at).execute(&self.pool).await.map_err(unavailable)?;
                Ok(())
            }

            async fn update_client(&self, c: &Client) -> StoreResult<bool> {
                let sql = "UPDATE clients SET name = $2, secret_hash = $3, redirect_uris = $4, grant_types = $5,
                        auth_method = $6, scopes = $7, require_pkce = $8, allow_plain_pkce = $9, id_token_alg = $10,
                        always_issue_refresh_token = $11, jwks = $12, require_par = $13, access_token_format = $14,
                        resources = $15, require_dpop = $16, post_logout_redirect_uris = $17, backchannel_logout_uri = $18,
                        backchannel_logout_session_required = $19, registration_token_hash = $20, secret_sealed = $21
                     WHERE id = $1";
                let n = client_query(sql, c)?.execute(&self.pool).await.map_err(unavailable)?.rows_affected();
                Ok(n > 0)
            }

            async fn list_clients(&self) -> StoreResult<Vec<Client>> {
                let rows = sqlx::query("SELECT * FROM clients ORDER BY created_at, id")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(unavailable)?;
                rows.iter().map(client_from).collect()
            }

            async fn remove_client(&self, id: &str, now: UnixTime) -> StoreResult<bool> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                let n = sqlx::query("DELETE FROM clients WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?
                    .rows_affected();
                for table in ["access_tokens", "refresh_tokens"] {
                    sqlx::query(&format!("UPDATE {table} SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL"))
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                }
                for table in ["consents", "device_codes", "session_clients"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE client_id = $1"))
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                }
                tx.commit().await.map_err(unavailable)?;
                Ok(n > 0)
            }

            async fn set_client_secret(&self, id: &str, secret_hash: &str) -> StoreResult<bool> {
                let r = sqlx::query("UPDATE clients SET secret_hash = $1 WHERE id = $2")
                    .bind(secret_hash)
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(unavailable)?;
                Ok(r.rows_affected() > 0)
            }

            async fn use_client_assertion(&self, client_id: &str, jti: &str, expires_at: UnixTime) -> StoreResult<bool> {
                crate::Writes::use_client_assertion(self.writes(), client_id.to_string(), jti.to_string(), expires_at)
                    .await
            }
        }

        #[async_trait]
        impl ResourceStore for $Store {
            async fn resource(&self, id: &str) -> StoreResult<Option<Resource>> {
                crate::Reads::one(self.reads(), crate::sql::RESOURCE, id, |row| crate::rows::resource(row)).await
            }

            async fn insert_resource(&self, r: &Resource) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO resources (id, name, scopes, access_token_format, access_token_lifetime, signing_alg, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&r.id)
                .bind(&r.name)
                .bind(to_json(&r.scopes)?)
                .bind(r.access_token_format.as_str())
                .bind(r.access_token_lifetime)
                .bind(r.signing_alg.as_str())
                .bind(r.created_at)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
                Ok(())
            }

            async fn list_resources(&self) -> StoreResult<Vec<Resource>> {
                let rows = sqlx::query("SELECT * FROM resources ORDER BY created_at, id")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(unavailable)?;
                rows.iter().map(|row| crate::rows::resource(row)).collect()
            }

            async fn remove_resource(&self, id: &str, now: UnixTime) -> StoreResult<bool> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                let n = sqlx::query("DELETE FROM resources WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?
                    .rows_affected();
                sqlx::query("UPDATE access_tokens SET revoked_at = $1 WHERE audience = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                // Clients' lists are JSON arrays: rewritten here, row by row (a handful of clients).
                let rows = sqlx::query("SELECT * FROM clients").fetch_all(&mut *tx).await.map_err(unavailable)?;
                for row in &rows {
                    let client = client_from(row)?;
                    if client.resources.iter().any(|r| r == id) {
                        let kept: Vec<&String> = client.resources.iter().filter(|r| *r != id).collect();
                        sqlx::query("UPDATE clients SET resources = $1 WHERE id = $2")
                            .bind(to_json(&kept)?)
                            .bind(&client.id)
                            .execute(&mut *tx)
                            .await
                            .map_err(unavailable)?;
                    }
                }
                tx.commit().await.map_err(unavailable)?;
                Ok(n > 0)
            }
        }

        #[async_trait]
        impl UserStore for $Store {
            async fn user(&self, id: &str) -> StoreResult<Option<User>> {
                crate::Reads::one(self.reads(), crate::sql::USER, id, |row| crate::rows::user(row)).await
            }

            async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
                crate::Reads::one(self.reads(), crate::sql::USER_BY_USERNAME, username, |row| crate::rows::user(row)).await
            }

            async fn insert_user(&self, u: &User) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO users (id, username, password_hash, name, email, email_verified, disabled, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&u.id)
                .bind(&u.username)
                .bind(&u.password_hash)
                .bind(&u.name)
                .bind(&u.email)
                .bind(u.email_verified)
                .bind(u.disabled)
                .bind(u.created_at)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
                Ok(())
            }

            async fn list_users(&self) -> StoreResult<Vec<User>> {
                let rows = sqlx::query("SELECT * FROM users ORDER BY created_at, username")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(unavailable)?;
                rows.iter().map(user_from).collect()
            }

            async fn set_password(&self, id: &str, password_hash: &str) -> StoreResult<bool> {
                let r = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                    .bind(password_hash)
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(unavailable)?;
                Ok(r.rows_affected() > 0)
            }

            async fn set_disabled(&self, id: &str, disabled: bool) -> StoreResult<bool> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                let r = sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
                    .bind(disabled)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                if disabled {
                    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                }
                tx.commit().await.map_err(unavailable)?;
                Ok(r.rows_affected() > 0)
            }

            async fn remove_user(&self, id: &str, now: UnixTime) -> StoreResult<bool> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                let n = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?
                    .rows_affected();
                for table in ["access_tokens", "refresh_tokens"] {
                    sqlx::query(&format!("UPDATE {table} SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL"))
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                }
                for table in ["sessions", "consents"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                }
                tx.commit().await.map_err(unavailable)?;
                Ok(n > 0)
            }
        }

        #[async_trait]
        impl CodeStore for $Store {
            async fn insert_code(&self, c: &CodeRecord) -> StoreResult<()> {
                crate::Writes::insert_code(self.writes(), c.clone()).await
            }

            async fn code(&self, hash: &str) -> StoreResult<Option<CodeRecord>> {
                crate::Reads::one(self.reads(), crate::sql::CODE, hash, |row| crate::rows::code(row)).await
            }

            async fn redeem_code(
                &self,
                hash: &str,
                now: UnixTime,
                trace: &str,
                issued: &IssuedTokens,
            ) -> StoreResult<Redemption> {
                crate::Writes::redeem_code(self.writes(), hash.to_string(), now, trace.to_string(), issued.clone()).await
            }

            async fn code_by_grant(&self, grant_id: &str) -> StoreResult<Option<CodeRecord>> {
                let row = sqlx::query("SELECT * FROM codes WHERE grant_id = $1")
                    .bind(grant_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(unavailable)?;
                row.as_ref().map(code_from).transpose()
            }

            async fn pending_codes(&self, client_id: &str, now: UnixTime, limit: u32) -> StoreResult<Vec<CodeRecord>> {
                let rows = sqlx::query(
                    "SELECT * FROM codes WHERE client_id = $1 AND redeemed_at IS NULL AND expires_at > $2
                     ORDER BY issued_at DESC LIMIT $3",
                )
                .bind(client_id)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
                rows.iter().map(code_from).collect()
            }
        }

        #[async_trait]
        impl DeviceStore for $Store {
            async fn insert_device_code(&self, d: &DeviceCodeRecord) -> StoreResult<()> {
                crate::Writes::insert_device_code(self.writes(), d.clone()).await
            }

            async fn device_code(&self, hash: &str) -> StoreResult<Option<DeviceCodeRecord>> {
                crate::Reads::one(self.reads(), crate::sql::DEVICE_CODE, hash, |row| crate::rows::device_code(row)).await
            }

            async fn device_code_by_user_code(&self, user_code_hash: &str) -> StoreResult<Option<DeviceCodeRecord>> {
                crate::Reads::one(self.reads(), crate::sql::DEVICE_CODE_BY_USER_CODE, user_code_hash, |row| {
                    crate::rows::device_code(row)
                })
                .await
            }

            async fn poll_device_code(&self, hash: &str, now: UnixTime) -> StoreResult<Option<candor_core::device::Poll>> {
                crate::Writes::poll_device_code(self.writes(), hash.to_string(), now).await
            }

            async fn decide_device_code(
                &self,
                hash: &str,
                decision: &candor_core::device::Decision,
                now: UnixTime,
                trace: &str,
            ) -> StoreResult<bool> {
                crate::Writes::decide_device_code(self.writes(), hash.to_string(), decision.clone(), now, trace.to_string())
                    .await
            }

            async fn redeem_device_code(
                &self,
                hash: &str,
                now: UnixTime,
                trace: &str,
                issued: &IssuedTokens,
            ) -> StoreResult<Redemption> {
                crate::Writes::redeem_device_code(self.writes(), hash.to_string(), now, trace.to_string(), issued.clone())
                    .await
            }
        }

        #[async_trait]
        impl TokenStore for $Store {
            async fn use_dpop_proof(&self, jkt: &str, jti: &str, expires_at: UnixTime) -> StoreResult<bool> {
                crate::Writes::use_dpop_proof(self.writes(), jkt.to_string(), jti.to_string(), expires_at).await
            }

            async fn access_token(&self, hash: &str) -> StoreResult<Option<AccessTokenRecord>> {
                crate::Reads::one(self.reads(), crate::sql::ACCESS_TOKEN, hash, |row| crate::rows::access(row)).await
            }

            async fn refresh_token(&self, hash: &str) -> StoreResult<Option<RefreshTokenRecord>> {
                crate::Reads::one(self.reads(), crate::sql::REFRESH_TOKEN, hash, |row| crate::rows::refresh(row)).await
            }

            async fn insert_tokens(&self, issued: &IssuedTokens) -> StoreResult<()> {
                crate::Writes::insert_tokens(self.writes(), issued.clone()).await
            }

            async fn insert_sibling(&self, rotated_hash: &str, issued: &IssuedTokens) -> StoreResult<bool> {
                crate::Writes::insert_sibling(self.writes(), rotated_hash.to_string(), issued.clone()).await
            }

            async fn rotate_refresh_token(
                &self,
                hash: &str,
                now: UnixTime,
                trace: &str,
                issued: &IssuedTokens,
            ) -> StoreResult<Rotation> {
                crate::Writes::rotate_refresh_token(self.writes(), hash.to_string(), now, trace.to_string(), issued.clone()).await
            }

            async fn tokens_of_grant(&self, grant_id: &str) -> StoreResult<(Vec<AccessTokenRecord>, Vec<RefreshTokenRecord>)> {
                let access = sqlx::query("SELECT * FROM access_tokens WHERE grant_id = $1 ORDER BY issued_at, hash")
                    .bind(grant_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(unavailable)?;
                let refresh = sqlx::query("SELECT * FROM refresh_tokens WHERE grant_id = $1 ORDER BY issued_at, hash")
                    .bind(grant_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(unavailable)?;
                Ok((
                    access.iter().map(access_from).collect::<StoreResult<_>>()?,
                    refresh.iter().map(refresh_from).collect::<StoreResult<_>>()?,
                ))
            }

            async fn revoke_grant(&self, grant_id: &str, now: UnixTime) -> StoreResult<u64> {
                crate::Writes::revoke_grant(self.writes(), grant_id.to_string(), now).await
            }

            async fn revoke_access_token(&self, hash: &str, now: UnixTime) -> StoreResult<bool> {
                crate::Writes::revoke_access_token(self.writes(), hash.to_string(), now).await
            }
        }

        #[async_trait]
        impl SessionStore for $Store {
            async fn insert_session(&self, s: &SessionRecord) -> StoreResult<()> {
                crate::Writes::insert_session(self.writes(), s.clone()).await
            }

            async fn session(&self, hash: &str) -> StoreResult<Option<SessionRecord>> {
                crate::Reads::one(self.reads(), crate::sql::SESSION, hash, |row| crate::rows::session(row)).await
            }

            async fn delete_session(&self, hash: &str) -> StoreResult<()> {
                crate::Writes::delete_session(self.writes(), hash.to_string()).await
            }

            async fn end_session(&self, hash: &str, now: UnixTime) -> StoreResult<Option<EndedSession>> {
                crate::Writes::end_session(self.writes(), hash.to_string(), now).await
            }
        }

        #[async_trait]
        impl InteractionStore for $Store {
            async fn insert_interaction(&self, i: &InteractionRecord) -> StoreResult<()> {
                crate::Writes::insert_interaction(self.writes(), i.clone()).await
            }

            async fn interaction(&self, hash: &str) -> StoreResult<Option<InteractionRecord>> {
                crate::Reads::one(self.reads(), crate::sql::INTERACTION, hash, |row| crate::rows::interaction(row)).await
            }

            async fn record_login(&self, hash: &str, user_id: &str, at: UnixTime, sid: Option<&str>) -> StoreResult<()> {
                crate::Writes::record_login(self.writes(), hash.to_string(), user_id.to_string(), at, sid.map(str::to_string)).await
            }

            async fn take_interaction(&self, hash: &str) -> StoreResult<bool> {
                crate::Writes::take_interaction(self.writes(), hash.to_string()).await
            }

            async fn insert_pushed_request(&self, p: &candor_core::model::PushedRequest) -> StoreResult<()> {
                crate::Writes::insert_pushed_request(self.writes(), p.clone()).await
            }

            async fn take_pushed_request(&self, hash: &str, now: UnixTime) -> StoreResult<candor_core::store::Taking> {
                crate::Writes::take_pushed_request(self.writes(), hash.to_string(), now).await
            }
        }

        #[async_trait]
        impl ConsentStore for $Store {
            async fn consent(&self, user_id: &str, client_id: &str) -> StoreResult<Vec<String>> {
                crate::Reads::all(self.reads(), crate::sql::CONSENT, &[user_id, client_id], |row| row.text("scope")).await
            }

            async fn revoke_consent(&self, user_id: &str, client_id: &str, now: UnixTime) -> StoreResult<bool> {
                crate::Writes::revoke_consent(self.writes(), user_id.to_string(), client_id.to_string(), now).await
            }

            async fn grant_consent(&self, user_id: &str, client_id: &str, scopes: &[String], now: UnixTime) -> StoreResult<()> {
                crate::Writes::grant_consent(self.writes(), user_id.to_string(), client_id.to_string(), scopes.to_vec(), now).await
            }
        }

        #[async_trait]
        impl KeyStore for $Store {
            async fn keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
                let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at DESC, kid")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(unavailable)?;
                rows.iter()
                    .map(|row| {
                        let alg: String = row.try_get("alg").map_err(unavailable)?;
                        Ok(SigningKeyRecord {
                            kid: row.try_get("kid").map_err(unavailable)?,
                            alg: SigningAlg::parse(&alg).ok_or_else(|| corrupt("alg", &alg))?,
                            private_der: row.try_get("private_der").map_err(unavailable)?,
                            created_at: row.try_get("created_at").map_err(unavailable)?,
                            retired_at: row.try_get("retired_at").map_err(unavailable)?,
                        })
                    })
                    .collect()
            }

            async fn add_key(&self, key: &SigningKeyRecord, now: UnixTime) -> StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE alg = $2 AND retired_at IS NULL")
                    .bind(now)
                    .bind(key.alg.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                sqlx::query("INSERT INTO signing_keys (kid, alg, private_der, created_at, retired_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&key.kid)
                    .bind(key.alg.as_str())
                    .bind(&key.private_der)
                    .bind(key.created_at)
                    .bind(key.retired_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                tx.commit().await.map_err(unavailable)
            }

            async fn remove_retired_keys(&self, before: UnixTime) -> StoreResult<u64> {
                let r = sqlx::query("DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await
                    .map_err(unavailable)?;
                Ok(r.rows_affected())
            }
        }

        fn audit_from(row: &$Row) -> StoreResult<AuditRecord> {
            let facts: String = row.try_get("facts").map_err(unavailable)?;
            Ok(AuditRecord {
                trace_id: row.try_get("trace_id").map_err(unavailable)?,
                at: row.try_get("at").map_err(unavailable)?,
                endpoint: row.try_get("endpoint").map_err(unavailable)?,
                client_id: row.try_get("client_id").map_err(unavailable)?,
                grant_type: row.try_get("grant_type").map_err(unavailable)?,
                reason: row.try_get("reason").map_err(unavailable)?,
                facts: serde_json::from_str(&facts).map_err(|e| corrupt("audit facts", e))?,
                grant_id: row.try_get("grant_id").map_err(unavailable)?,
                encoding: row.try_get("encoding").map_err(unavailable)?,
            })
        }

        #[async_trait]
        impl AuditStore for $Store {
            async fn record_audit(&self, r: &AuditRecord) -> StoreResult<()> {
                crate::Writes::record_audit(self.writes(), r.clone()).await
            }

            async fn audit(&self, trace_id: &str) -> StoreResult<Option<AuditRecord>> {
                let row = sqlx::query("SELECT * FROM audit WHERE trace_id = $1")
                    .bind(trace_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(unavailable)?;
                row.as_ref().map(audit_from).transpose()
            }

            async fn audit_by_grant(&self, grant_id: &str) -> StoreResult<Vec<AuditRecord>> {
                let rows = sqlx::query("SELECT * FROM audit WHERE grant_id = $1 ORDER BY at, trace_id")
                    .bind(grant_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(unavailable)?;
                rows.iter().map(audit_from).collect()
            }

            async fn recent_rejections(
                &self,
                client_id: Option<&str>,
                reason: Option<&str>,
                limit: u32,
            ) -> StoreResult<Vec<AuditRecord>> {
                let rows = sqlx::query(
                    "SELECT * FROM audit WHERE reason IS NOT NULL AND (CAST($1 AS TEXT) IS NULL OR client_id = $1) AND (CAST($2 AS TEXT) IS NULL OR reason = $2)
                     ORDER BY at DESC, trace_id LIMIT $3",
                )
                .bind(client_id)
                .bind(reason)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
                rows.iter().map(audit_from).collect()
            }

            async fn rejection_counts(&self, since: UnixTime) -> StoreResult<Vec<(Option<String>, String, i64)>> {
                let rows = sqlx::query(
                    "SELECT client_id, reason, COUNT(*) AS n FROM audit WHERE reason IS NOT NULL AND at >= $1
                     GROUP BY client_id, reason ORDER BY n DESC, client_id, reason LIMIT 500",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
                rows.iter()
                    .map(|r| {
                        Ok((
                            r.try_get("client_id").map_err(unavailable)?,
                            r.try_get("reason").map_err(unavailable)?,
                            r.try_get("n").map_err(unavailable)?,
                        ))
                    })
                    .collect()
            }
        }

        #[async_trait]
        impl SweepStore for $Store {
            async fn sweep(&self, policy: &SweepPolicy) -> StoreResult<Swept> {
                let mut counts = [0u64; 11];
                for (count, step) in counts.iter_mut().zip(crate::shared::sweep_steps(policy)) {
                    *count = self.sweep_step(&step, policy.batch).await?;
                }
                Ok(Swept::from(counts))
            }
        }
    };
}

pub(crate) use store_impl;

/// One statement of a sweep: its SQL, whose bounded sub-select ends in `LIMIT $2)` (each store
/// adapts that ending), the time bound `$1`, and the key ranges `$3`/`$4` it walks, if any.
pub(crate) struct SweepStep {
    pub(crate) sql: &'static str,
    pub(crate) bound: i64,
    pub(crate) walk: Option<(String, String)>,
}

/// The statements of one sweep, in the order of `Swept::counts`.
pub(crate) fn sweep_steps(policy: &candor_core::store::SweepPolicy) -> [SweepStep; 11] {
    let now = policy.now;
    let horizon = now - policy.tombstone_retention;
    // Each statement deletes at most `batch` rows, chosen by key, so concurrent sweepers on
    // several nodes only ever delete rows that are dead for all of them.
    //
    // Token keys and trace ids start with their time (`tokens::hash_secret`, `ordered_id`), so
    // old rows are a range of the primary key, which bounds the walk:
    // keys below the prefix of a time before which every row is dead or nearly so, and,
    // for rows keyed before keys were ordered (a bare digest or a random id), keys above
    // any time near now. The row's own times decide; the ranges only bound the walk.
    let steps: [(&'static str, i64, Option<i64>); 11] = [
        // A code is dead at expiry (it cannot be redeemed later); its tombstone stays `retention` more.
        ("DELETE FROM codes WHERE hash IN (SELECT hash FROM codes WHERE expires_at < $1 LIMIT $2)", horizon, None),
        // A token dies at expiry or revocation, which come after its issue: one dead since the
        // horizon was issued before it, and one issued more than its lifetime before it is dead.
        (
            "DELETE FROM access_tokens WHERE hash IN (SELECT hash FROM access_tokens
             WHERE (hash < $3 OR hash > $4) AND (expires_at < $1 OR revoked_at < $1) LIMIT $2)",
            horizon,
            Some(horizon.saturating_sub(policy.access_token_lifetime.unwrap_or(0))),
        ),
        // Rotated refresh tokens stay while their family lives, so a replay is detected (and the
        // family revoked) for the family's whole lifetime, not only for the retention window.
        // Rotation keeps the family's expiry, so a refresh token expires at most the refresh
        // lifetime after its issue.
        (
            "DELETE FROM refresh_tokens WHERE hash IN (SELECT hash FROM refresh_tokens
             WHERE (hash < $3 OR hash > $4) AND (expires_at < $1 OR revoked_at < $1) LIMIT $2)",
            horizon,
            Some(horizon.saturating_sub(policy.refresh_token_lifetime.unwrap_or(0))),
        ),
        ("DELETE FROM sessions WHERE hash IN (SELECT hash FROM sessions WHERE expires_at < $1 LIMIT $2)", now, None),
        (
            "DELETE FROM interactions WHERE hash IN (SELECT hash FROM interactions WHERE expires_at < $1 LIMIT $2)",
            now,
            None,
        ),
        (
            "DELETE FROM audit WHERE trace_id IN (SELECT trace_id FROM audit
             WHERE (trace_id < $3 OR trace_id > $4) AND at < $1 LIMIT $2)",
            now - policy.audit_retention,
            Some(now - policy.audit_retention),
        ),
        // A used assertion need not be remembered once it has expired: it would be refused as
        // expired (the leeway is at most 600 s, and the rows stay a day past expiry).
        (
            "DELETE FROM client_assertions WHERE (client_id, jti) IN (SELECT client_id, jti FROM client_assertions
             WHERE expires_at < $1 LIMIT $2)",
            now - 86_400,
            None,
        ),
        // A pushed request nobody used, once expired (RFC 9126 §2.2: a short lifetime).
        (
            "DELETE FROM pushed_requests WHERE hash IN (SELECT hash FROM pushed_requests WHERE expires_at < $1 LIMIT $2)",
            now,
            None,
        ),
        // A used DPoP proof past its window would be refused as stale: its jti need not be kept.
        (
            "DELETE FROM dpop_proofs WHERE (jkt, jti) IN (SELECT jkt, jti FROM dpop_proofs WHERE expires_at < $1 LIMIT $2)",
            now,
            None,
        ),
        // A device authorization is dead at expiry; its tombstone stays `retention` more, as a code's.
        (
            "DELETE FROM device_codes WHERE hash IN (SELECT hash FROM device_codes WHERE expires_at < $1 LIMIT $2)",
            horizon,
            None,
        ),
        // Which clients a session signed in to matters while the session lives (logout tells
        // them); the session's own sweep (or its user's removal) leaves these behind.
        (
            "DELETE FROM session_clients WHERE (sid, client_id) IN (SELECT sid, client_id FROM session_clients sc
             WHERE created_at < $1 AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.sid = sc.sid) LIMIT $2)",
            now,
            None,
        ),
    ];
    steps.map(|(sql, bound, walk_below)| SweepStep {
        sql,
        bound,
        walk: walk_below.map(|below| sweep_key_ranges(now, below)),
    })
}

/// The two key ranges a sweep walks (see `sweep_steps`): keys below the prefix of second `walk_below`
/// (time-ordered keys made before it), and above the prefix of a day from now, where no ordered
/// key is made (keys made before they were ordered: a random id or a bare SHA-256 digest, in
/// hex). Both are 12 hex characters. An unordered key that happens to fall between the two (about
/// one in 100 000 for a window of a month) is left: a few rows at most, all from before keys were
/// ordered.
pub(crate) fn sweep_key_ranges(now: candor_core::clock::UnixTime, walk_below: i64) -> (String, String) {
    use candor_core::tokens::ordered_prefix;
    (ordered_prefix(walk_below), ordered_prefix(now.saturating_add(86_400)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sweep_ranges_bracket_ordered_ids_by_their_time() {
        let (below, above) = super::sweep_key_ranges(1_790_000_000, 1_790_000_000 - 86_400);
        let id_at = |ms: u64| format!("{ms:012x}{}", "7".repeat(20));
        assert!(id_at(1_789_913_599_999) < below, "a record from before the horizon is in the lower range");
        assert!(id_at(1_789_913_600_000) > below, "one from the horizon's millisecond on is not");
        assert!(id_at(1_790_000_000_000) < above, "a record made now is in neither range");
        assert!(id_at(1_790_086_400_001) > above);
        // A random (pre-ordering) id is almost always far above any time near now.
        assert!("9f2c0a7e5b6d4c3b2a1908f7e6d5c4b3" > above.as_str());
        assert_eq!(super::sweep_key_ranges(10, -90), ("000000000000".into(), "000005268310".into()));
    }
}
