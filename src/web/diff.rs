//! Unified line diffs for the editor's Diff button and the history view.
//! `similar` (Myers, the same algorithm as git) rather than a home-made LCS:
//! it is small, widely used and handles the edge cases (missing final
//! newline, large inputs with a deadline) a quick LCS would not.

use similar::TextDiff;

/// A unified diff (3 lines of context) from `old` to `new`; empty when equal.
pub fn unified(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    if old == new {
        return String::new();
    }
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .missing_newline_hint(false)
        .header(old_name, new_name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(unified("a\nb\n", "a\nb\n", "running", "edited"), "");
    }

    #[test]
    fn changed_line_is_minus_then_plus() {
        let d = unified("a\nb\nc\n", "a\nB\nc\nd\n", "running", "edited");
        assert!(d.starts_with("--- running\n+++ edited\n"), "{d}");
        assert!(d.contains("\n-b\n+B\n"), "{d}");
        assert!(d.contains("\n+d\n"), "{d}");
        assert!(d.contains("@@ -1,3 +1,4 @@"), "{d}");
    }
}
