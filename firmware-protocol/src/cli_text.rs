//! How the three binaries word a refusal on the command line: one line, whatever the error's
//! source says and even with `RUST_BACKTRACE=1` (a user's mistake is one clear line, never a
//! stack trace). Pure text functions, shared so that `custos-server`, `custosd` and
//! `custos-sim` say it the same way; printing stays in each `main`.

/// `text` with its line breaks folded, so that an error is one line whatever its source says.
pub fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// An error's message and its causes (outermost first) joined with ": " on one line, leaving
/// out a cause the text already holds (an error that prints its source and also returns it as
/// `source()`).
pub fn causes_line<I, S>(causes: I) -> String
where
    I: IntoIterator<Item = S>,
    S: ToString,
{
    let mut text = String::new();
    for cause in causes {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    one_line(&text)
}

/// What a command-line parser's rendered refusal says, on one line: the lines before its
/// `Usage:` block, without the leading `error: `.
pub fn usage_line(rendered: &str) -> String {
    let what: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.starts_with("Usage:"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let what = what.join(" ");
    what.strip_prefix("error: ").unwrap_or(&what).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_line_message_becomes_one_line() {
        assert_eq!(one_line("  first\n\n  second  \n"), "first second");
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let causes = ["reading c.toml: no such file", "no such file", "os error 2"];
        assert_eq!(
            causes_line(causes),
            "reading c.toml: no such file: os error 2"
        );
    }

    #[test]
    fn a_usage_refusal_keeps_what_precedes_the_usage_block() {
        let rendered = "error: unexpected argument '--x' found\n\n  tip: try '-- --x'\n\nUsage: custosd run\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_line(rendered),
            "unexpected argument '--x' found tip: try '-- --x'"
        );
    }
}
