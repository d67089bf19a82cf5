//! Dataset names as people write them: `source/schema/table`, `bucket/key`, `bucket/prefix/`.

use crate::client::ClientError;

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
}
