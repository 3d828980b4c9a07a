//! CSRF protection for forms: a signed double-submit token.
//!
//! The browser holds a random value in an HttpOnly cookie; each form carries
//! HMAC-SHA256(key, value). An attacker can neither read the cookie nor forge
//! the MAC without the key, which every instance shares through the database.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use hmac::{Hmac, Mac};
use sha2::Sha256;

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
    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-bs_csrf"
        } else {
            "bs_csrf"
        }
    }

    /// The cookie holding a browser's random CSRF value. Strictly necessary,
    /// so it needs no consent (C-01).
    pub fn cookie(&self, value: String) -> Cookie<'static> {
        Cookie::build((self.cookie_name(), value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .path("/")
            .build()
    }

    /// The token forms carry for the browser whose cookie holds `value`.
    pub fn sign(&self, value: &str) -> String {
        hex::encode(self.mac(value).finalize().into_bytes())
    }

    /// True if `submitted` is this browser's token (constant-time compare).
    pub fn verify(&self, jar: &CookieJar, submitted: &str) -> bool {
        let (Some(cookie), Ok(submitted)) = (jar.get(self.cookie_name()), hex::decode(submitted))
        else {
            return false;
        };
        self.mac(cookie.value()).verify_slice(&submitted).is_ok()
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
        let jar = CookieJar::new().add(csrf.cookie("one".into()));
        let token = csrf.sign("one");
        assert!(csrf.verify(&jar, &token));
        assert!(!csrf.verify(&jar, "00"));
        assert!(!csrf.verify(&CookieJar::new(), &token));
        let other_jar = CookieJar::new().add(csrf.cookie("two".into()));
        assert!(!csrf.verify(&other_jar, &token));
        assert!(!Csrf::new(b"other", false).verify(&jar, &token));
    }
}
