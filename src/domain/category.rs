//! Article categories: the rule every article's list follows, and so every
//! feed's own list too.

/// Categories an article may carry at most.
pub const MAX_CATEGORIES: usize = 10;

/// A category name: 1 to 50 characters, no control characters and no
/// commas (the console's field is a comma-separated list).
pub fn valid_category(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 50
        && !name.chars().any(|c| c.is_control() || c == ',')
}
