//! Splits one haproxy.cfg line into words the way HAProxy does: whitespace
//! separates words, `#` starts a comment, "double" and 'single' quotes group,
//! and a backslash escapes the next character outside single quotes.

/// Splits `line` into words. Errors name the problem (unterminated quote, …).
pub(super) fn split_line(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // A word exists even when empty (`""`), so track it apart from its text.
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '#' => break,
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => word.push(ch),
                        None => return Err("unmatched quote (')".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => push_escape(&mut word, &mut chars)?,
                        // HAProxy expands "${NAME}" from the environment; a
                        // configuration must not depend on the proxy's environment here.
                        Some('$') if chars.peek() == Some(&'{') => {
                            return Err("environment variables (\"${NAME}\") are not supported".into())
                        }
                        Some(ch) => word.push(ch),
                        None => return Err("unmatched quote (\")".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                push_escape(&mut word, &mut chars)?;
            }
            _ => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Handles the character after a backslash. Sequences HAProxy does not know
/// (`\1` in replace strings, `\.` in regexes) keep their backslash.
fn push_escape(
    word: &mut String,
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> Result<(), String> {
    match chars.next() {
        Some(c @ (' ' | '#' | '\\' | '\'' | '"')) => word.push(c),
        Some('r') => word.push('\r'),
        Some('n') => word.push('\n'),
        Some('t') => word.push('\t'),
        Some('x') => {
            let hex: String = chars.by_ref().take(2).collect();
            let byte = u8::from_str_radix(&hex, 16)
                .map_err(|_| format!("invalid '\\x' sequence '\\x{hex}' (two hex digits expected)"))?;
            word.push(char::from(byte));
        }
        Some(other) => {
            word.push('\\');
            word.push(other);
        }
        None => word.push('\\'),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_line;

    fn words(line: &str) -> Vec<String> {
        split_line(line).expect("line splits")
    }

    #[test]
    fn whitespace_and_comments() {
        assert_eq!(words("  bind  *:80\tssl # comment"), ["bind", "*:80", "ssl"]);
        assert!(words("   # only a comment").is_empty());
        assert!(words("").is_empty());
    }

    #[test]
    fn quotes_group_words() {
        assert_eq!(words(r#"set-header X "a b" 'c d'"#), ["set-header", "X", "a b", "c d"]);
        assert_eq!(words(r#"x "a\"b" 'a\b'"#), ["x", "a\"b", "a\\b"]);
        assert_eq!(words(r#"x "" y"#), ["x", "", "y"]);
        assert_eq!(words(r#"x a"b c"d"#), ["x", "ab cd"]);
        assert_eq!(words("x '#not comment'"), ["x", "#not comment"]);
    }

    #[test]
    fn backslash_escapes() {
        assert_eq!(words(r"stats realm HAProxy\ Statistics"), ["stats", "realm", "HAProxy Statistics"]);
        assert_eq!(words(r"x a\#b c\\d"), ["x", "a#b", "c\\d"]);
        assert_eq!(
            words(r"replace-value Host (.*):8080 \1:8443"),
            ["replace-value", "Host", "(.*):8080", "\\1:8443"]
        );
        assert_eq!(words(r"x \x41"), ["x", "A"]);
    }

    #[test]
    fn unterminated_quotes_are_errors() {
        assert!(split_line(r#"x "abc"#).unwrap_err().contains("unmatched quote"));
        assert!(split_line("x 'abc").unwrap_err().contains("unmatched quote"));
        assert!(split_line(r#"bind "${IP}:80""#).unwrap_err().contains("environment variables"));
        assert_eq!(words("x '${IP}' $a"), ["x", "${IP}", "$a"]);
    }
}
