//! CSRF protection for forms: a signed double-submit token.
//!
//! The browser holds a random value in an HttpOnly cookie; each form carries
//! HMAC-SHA256(key, value). An attacker can neither read the cookie nor forge
//! the MAC without the key, which every instance shares through the database.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::Token;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct Csrf {
    key: Vec<u8>,
    secure: bool,
}

impl Csrf {
    pub fn new(key: &[u8], secure: bool) -> Self {
        Self {
            key: key.to_vec(),
            secure,
        }
    }

    /// `__Host-` binds the cookie to this exact origin over https.
    fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-bs_csrf"
        } else {
            "bs_csrf"
        }
    }

    /// The token for this browser's forms, setting its cookie if it has none.
    /// A strictly necessary cookie, so it needs no consent (C-01).
    pub fn issue(&self, jar: CookieJar) -> (CookieJar, String) {
        if let Some(existing) = jar.get(self.cookie_name()) {
            let token = self.sign(existing.value());
            return (jar, token);
        }
        let value = Token::generate().expose().to_owned();
        let token = self.sign(&value);
        let cookie = Cookie::build((self.cookie_name(), value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .path("/")
            .build();
        (jar.add(cookie), token)
    }

    /// True if `submitted` is this browser's token (constant-time compare).
    pub fn verify(&self, jar: &CookieJar, submitted: &str) -> bool {
        let (Some(cookie), Ok(submitted)) = (jar.get(self.cookie_name()), hex::decode(submitted))
        else {
            return false;
        };
        self.mac(cookie.value()).verify_slice(&submitted).is_ok()
    }

    fn sign(&self, value: &str) -> String {
        hex::encode(self.mac(value).finalize().into_bytes())
    }

    fn mac(&self, value: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(value.as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_only_with_its_own_cookie_and_key() {
        let csrf = Csrf::new(b"key", false);
        let (jar, token) = csrf.issue(CookieJar::new());
        assert!(csrf.verify(&jar, &token));
        assert!(!csrf.verify(&jar, "00"));
        assert!(!csrf.verify(&CookieJar::new(), &token));
        let (other_jar, _) = csrf.issue(CookieJar::new());
        assert!(!csrf.verify(&other_jar, &token));
        assert!(!Csrf::new(b"other", false).verify(&jar, &token));
    }
}
