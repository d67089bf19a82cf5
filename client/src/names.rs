//! Dataset names as people write them: `source/schema/table`, `bucket/key`, `bucket/prefix/`.

use crate::client::ClientError;

/// A name that may start with the gateway serving it: `grpc+tls://east:50051/warehouse/t`
/// gives `(Some("grpc+tls://east:50051"), "warehouse/t")`; a plain name gives `(None, name)`.
pub fn split_gateway(name: &str) -> (Option<String>, &str) {
    let scheme = [
        "grpc+tls://",
        "grpc://",
        "grpc+tcp://",
        "https://",
        "http://",
    ]
    .into_iter()
    .find(|s| name.starts_with(s));
    let Some(scheme) = scheme else {
        return (None, name);
    };
    let rest = &name[scheme.len()..];
    match rest.split_once('/') {
        Some((authority, path)) => (Some(format!("{scheme}{authority}")), path),
        None => (Some(name.to_string()), ""),
    }
}

/// Whether two gateway URLs name the same gateway (scheme spellings and case aside).
pub fn same_gateway(a: &str, b: &str) -> bool {
    let authority = |u: &str| {
        let (_, rest) = u.split_once("://").unwrap_or(("", u));
        rest.trim_end_matches('/').to_ascii_lowercase()
    };
    authority(a) == authority(b)
}

/// Split a name into Flight path parts. A trailing `/` stays on the last part: it names a prefix.
pub fn parse(name: &str) -> Result<Vec<String>, ClientError> {
    let trimmed = name.strip_suffix('/');
    let body = trimmed.unwrap_or(name);
    let mut parts: Vec<String> = body.split('/').map(str::to_string).collect();
    if body.is_empty() || parts.iter().any(String::is_empty) {
        return Err(ClientError::Invalid(format!(
            "{name:?} is not a dataset name: write source/schema/table or bucket/path/file"
        )));
    }
    if let (Some(_), Some(last)) = (trimmed, parts.last_mut()) {
        last.push('/');
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn tables_files_and_prefixes() {
        assert_eq!(
            parse("demo/main/orders").unwrap(),
            ["demo", "main", "orders"]
        );
        assert_eq!(
            parse("files/out/o.parquet").unwrap(),
            ["files", "out", "o.parquet"]
        );
        assert_eq!(parse("files/exports/").unwrap(), ["files", "exports/"]);
        assert!(parse("").is_err());
        assert!(parse("a//b").is_err());
        assert!(parse("/a").is_err());
    }

    #[test]
    fn names_may_carry_their_gateway() {
        use super::{same_gateway, split_gateway};
        assert_eq!(
            split_gateway("grpc+tls://east:50051/warehouse/public/orders"),
            (
                Some("grpc+tls://east:50051".to_string()),
                "warehouse/public/orders"
            )
        );
        assert_eq!(split_gateway("demo/main/t"), (None, "demo/main/t"));
        assert!(same_gateway("grpc+tls://East:1", "https://east:1/"));
        assert!(!same_gateway("grpc+tls://east:1", "grpc+tls://west:1"));
    }
}
