//! An error and its causes as one line of text, for where a message must be a string: on the
//! wire, or inside an error that is `Clone` and cannot hold its source.

/// `error`, then each of its sources, joined by `": "`.
#[must_use]
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("opening the link")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn every_cause_is_named_in_order() {
        let error = Outer(std::io::Error::other("permission denied"));
        assert_eq!(super::chain(&error), "opening the link: permission denied");
    }
}
