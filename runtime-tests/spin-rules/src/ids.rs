//! Identifier rules of the Spin manifest.
//!
//! Spin's manifest types refuse malformed identifiers while the TOML is being read
//! (`spin_serde::KebabId`, `SnakeId`, `LowerSnakeId`): component ids must be kebab-case,
//! application and component variable names lower snake_case, key-value store labels either.
//! These rules are stricter than the variable *key* rules used at resolution time (see
//! [`crate::variables::validate_key`]): a manifest variable named `a_1` is rejected here
//! because every word must start with a letter, although `a_1` is a valid key.

/// Checks `id` against Spin's identifier rule: one or more words separated by `delim`,
/// each word non-empty, starting with an ASCII letter, made of ASCII letters and digits,
/// and either all lower-case or all upper-case. With `lower_only`, upper-case words are
/// refused too. Returns Spin's explanation when the id is not valid.
pub fn validate_id(id: &str, delim: char, lower_only: bool) -> Result<(), String> {
    if id.is_empty() {
        return Err("empty".into());
    }
    let wrong = match delim {
        '_' => Some('-'),
        '-' => Some('_'),
        _ => None,
    };
    if let Some(wrong) = wrong {
        if id.contains(wrong) {
            return Err(format!(
                "words must be separated with {delim:?}, not {wrong:?}"
            ));
        }
    }
    for word in id.split(delim) {
        let mut chars = word.chars();
        let Some(first) = chars.next() else {
            return Err(format!("{delim:?}-separated words must not be empty"));
        };
        if !first.is_ascii_alphabetic() {
            return Err(format!(
                "{delim:?}-separated words must start with an ASCII letter; got {first:?}"
            ));
        }
        let upper = first.is_ascii_uppercase();
        for ch in chars {
            if ch.is_ascii_digit() {
                continue;
            }
            if !ch.is_ascii_alphanumeric() {
                return Err(format!(
                    "{delim:?}-separated words may only contain alphanumeric ASCII; got {ch:?}"
                ));
            }
            if ch.is_ascii_uppercase() != upper {
                return Err(format!(
                    "{delim:?}-separated words must be all lowercase or all UPPERCASE; got {word:?}"
                ));
            }
        }
        if lower_only && upper {
            return Err(format!(
                "Lower-case identifiers must be all lowercase; got {id:?}"
            ));
        }
    }
    Ok(())
}

/// A component id: kebab-case (`my-component`, `API-v2` is not: words are all lower or all upper).
pub fn validate_kebab_id(id: &str) -> Result<(), String> {
    validate_id(id, '-', false)
}

/// An application or component variable name in the manifest: lower snake_case.
pub fn validate_lower_snake_id(id: &str) -> Result<(), String> {
    validate_id(id, '_', true)
}

/// A key-value store (or SQLite database) label: kebab-case or snake_case.
pub fn validate_kebab_or_snake_id(id: &str) -> Result<(), String> {
    match validate_id(id, '-', false) {
        Ok(()) => Ok(()),
        Err(_) if validate_id(id, '_', false).is_ok() => Ok(()),
        Err(_) => Err("expected kebab-case or snake_case".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_ids_accept_lowercase_words_with_digits() {
        for id in ["a", "visit", "visit-api", "v2-api", "a1-b2-c3", "API-v2"] {
            validate_kebab_id(id).unwrap_or_else(|e| panic!("{id}: {e}"));
        }
    }

    #[test]
    fn kebab_ids_reject_snake_case_with_a_hint() {
        let err = validate_kebab_id("bad_id").unwrap_err();
        assert_eq!(err, "words must be separated with '-', not '_'");
    }

    #[test]
    fn kebab_ids_reject_words_starting_with_a_digit() {
        let err = validate_kebab_id("1-2-3").unwrap_err();
        assert_eq!(
            err,
            "'-'-separated words must start with an ASCII letter; got '1'"
        );
    }

    #[test]
    fn kebab_ids_reject_empty_words_and_empty_ids() {
        assert!(validate_kebab_id("").is_err());
        assert!(validate_kebab_id("a--b").is_err());
        assert!(validate_kebab_id("-a").is_err());
        assert!(validate_kebab_id("a-").is_err());
    }

    #[test]
    fn kebab_ids_reject_mixed_case_words() {
        assert!(validate_kebab_id("myComponent").is_err());
    }

    #[test]
    fn lower_snake_ids_reject_uppercase_words() {
        assert!(validate_lower_snake_id("API_key").is_err());
        assert!(validate_lower_snake_id("api_key").is_ok());
    }

    #[test]
    fn lower_snake_ids_reject_words_starting_with_a_digit() {
        // Stricter than variable keys, which accept `a_1`.
        assert!(validate_lower_snake_id("a_1").is_err());
        assert!(validate_lower_snake_id("a1_b2").is_ok());
    }

    #[test]
    fn lower_snake_ids_reject_other_punctuation() {
        let err = validate_lower_snake_id("bad+name").unwrap_err();
        assert_eq!(
            err,
            "'_'-separated words may only contain alphanumeric ASCII; got '+'"
        );
    }

    #[test]
    fn store_labels_accept_kebab_or_snake_case() {
        for label in ["default", "my-store", "my_store", "CACHE"] {
            validate_kebab_or_snake_id(label).unwrap_or_else(|e| panic!("{label}: {e}"));
        }
        assert!(validate_kebab_or_snake_id("my store").is_err());
        assert!(validate_kebab_or_snake_id("").is_err());
    }
}
