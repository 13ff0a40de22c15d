//! Access tokens (JWT, HS256 only) and opaque random tokens stored as hashes.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What an access token is for; a token of another purpose is never accepted.
pub const ACCESS_PURPOSE: &str = "access";

/// How long past its `exp` a token is still accepted (clocks drift).
const LEEWAY_SECS: i64 = 60;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    /// The login session.
    pub sid: u64,
    pub typ: String,
}

pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Jwt {
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against the shop's clock (`check`), not the library's.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        Jwt {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    pub fn issue(&self, user_id: u64, sid: u64, now_secs: i64, ttl_secs: i64) -> String {
        let claims = Claims {
            sub: user_id.to_string(),
            exp: now_secs + ttl_secs,
            iat: now_secs,
            sid,
            typ: ACCESS_PURPOSE.to_string(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).unwrap_or_default()
    }

    /// The `(user id, session id)` of an access token valid at `now_secs`.
    pub fn check(&self, token: &str, now_secs: i64) -> Result<(u64, u64), TokenError> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?;
        if data.claims.typ != ACCESS_PURPOSE {
            return Err(TokenError::Invalid);
        }
        if data.claims.exp + LEEWAY_SECS < now_secs {
            return Err(TokenError::Expired);
        }
        let user_id = data.claims.sub.parse().map_err(|_| TokenError::Invalid)?;
        Ok((user_id, data.claims.sid))
    }
}

#[derive(Debug, PartialEq)]
pub enum TokenError {
    Expired,
    Invalid,
}

/// A new random token (256 bits, hex) for refresh, verification and reset links.
pub fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// What is stored instead of a token.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn issued_tokens_check_and_others_do_not() {
        let jwt = Jwt::new(SECRET);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let token = jwt.issue(7, 3, now, 900);
        assert_eq!(jwt.check(&token, now), Ok((7, 3)));
        assert_eq!(
            jwt.check(&jwt.issue(7, 3, now - 2000, 900), now),
            Err(TokenError::Expired)
        );
        // 60 seconds of leeway past `exp`, and not one more.
        assert_eq!(jwt.check(&token, now + 960), Ok((7, 3)));
        assert_eq!(jwt.check(&token, now + 961), Err(TokenError::Expired));
        assert_eq!(
            Jwt::new("another secret, also long enough!!").check(&token, now),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn alg_none_and_other_purposes_are_refused() {
        let jwt = Jwt::new(SECRET);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let header = r#"{"alg":"none","typ":"JWT"}"#;
        let claims = format!(
            r#"{{"sub":"1","exp":{},"iat":{now},"sid":1,"typ":"access"}}"#,
            now + 900
        );
        use base64ct::{Base64UrlUnpadded, Encoding};
        let unsigned = format!(
            "{}.{}.",
            Base64UrlUnpadded::encode_string(header.as_bytes()),
            Base64UrlUnpadded::encode_string(claims.as_bytes())
        );
        assert_eq!(jwt.check(&unsigned, now), Err(TokenError::Invalid));

        let other = Claims {
            sub: "1".into(),
            exp: now + 900,
            iat: now,
            sid: 1,
            typ: "reset".into(),
        };
        let token = encode(
            &Header::new(Algorithm::HS256),
            &other,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert_eq!(jwt.check(&token, now), Err(TokenError::Invalid));
        let hs512 = encode(
            &Header::new(Algorithm::HS512),
            &other,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert_eq!(jwt.check(&hs512, now), Err(TokenError::Invalid));
    }
}
