//! `conclave login` and `conclave logout`: trade an auth method's bearer token for an ACL token whose
//! SecretID is written to a sink file, and destroy such a token again (Consul's command/login, logout).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::Args;
use serde_json::json;

use super::acl::{call, fail};
use super::client::HttpFlags;

#[derive(Args, Debug)]
pub struct LoginArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// Name of the auth method to log in to (required).
    #[arg(long, default_value = "")]
    pub method: String,
    /// Type of the auth method; optional.
    #[arg(long = "type", default_value = "")]
    pub method_type: String,
    /// File holding the bearer token to present to the auth method.
    #[arg(long = "bearer-token-file", default_value = "")]
    pub bearer_token_file: String,
    /// File the new token's SecretID is written to (required).
    #[arg(long = "token-sink-file", default_value = "")]
    pub token_sink_file: String,
    /// Metadata for the new token as key=value; may be repeated.
    #[arg(long, value_parser = parse_meta)]
    pub meta: Vec<(String, String)>,
    /// Consul takes no positional arguments; they are collected to be refused with its message.
    #[arg(hide = true)]
    pub extra: Vec<String>,
}

/// One `-meta key=value`, as Consul's FlagMapValue reads it.
pub fn parse_meta(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) => Ok((key.to_string(), value.to_string())),
        None => Err(format!("Missing \"=\" value in argument: {text}")),
    }
}

pub fn login(args: LoginArgs) -> anyhow::Result<()> {
    if !args.extra.is_empty() {
        return fail("Should have no non-flag arguments.");
    }
    if args.method.is_empty() {
        return fail("Missing required '-method' flag");
    }
    if args.token_sink_file.is_empty() {
        return fail("Missing required '-token-sink-file' flag");
    }
    if args.bearer_token_file.is_empty() {
        return fail("Missing required '-bearer-token-file' flag");
    }
    let bearer = std::fs::read_to_string(&args.bearer_token_file)
        .or_else(|e| fail(format!("open {}: {e}", args.bearer_token_file)))?;
    let bearer = bearer.trim();
    if bearer.is_empty() {
        return fail(format!("No bearer token found in {}", args.bearer_token_file));
    }
    let meta: serde_json::Map<String, serde_json::Value> =
        args.meta.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
    let mut body = json!({ "AuthMethod": args.method, "BearerToken": bearer });
    if !meta.is_empty() {
        body["Meta"] = meta.into();
    }
    // A login is made with no token, so that it cannot be mistaken for one made by another identity.
    let token = call(&args.http.without_token(), "POST", "/v1/acl/login", Some(&body))
        .or_else(|e| fail(format!("Error logging in: {e:#}")))?;
    let secret = token["SecretID"].as_str().unwrap_or("");
    write_sink(Path::new(&args.token_sink_file), secret)
        .or_else(|e| fail(format!("Error writing token to file sink: {e:#}")))
}

/// Writes the SecretID so that readers never see a partial file: a private temporary file beside the
/// sink, renamed over it (Consul's `file.WriteAtomicWithPerms(path, data, 0755, 0600)`).
pub fn write_sink(path: &Path, secret: &str) -> anyhow::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let temporary = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("token"),
        std::process::id()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary).with_context(|| format!("open {}", temporary.display()))?;
    file.write_all(secret.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(())
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    #[command(flatten)]
    pub http: HttpFlags,
}

pub fn logout(args: LogoutArgs) -> anyhow::Result<()> {
    call(&args.http, "POST", "/v1/acl/logout", None).or_else(|e| fail(format!("Error destroying token: {e:#}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_flag_splits_at_the_first_equals() {
        assert_eq!(parse_meta("pod=web=1"), Ok(("pod".to_string(), "web=1".to_string())));
        assert_eq!(parse_meta("pod"), Err("Missing \"=\" value in argument: pod".to_string()));
    }

    #[test]
    fn token_sink_holds_only_the_secret_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let sink = dir.path().join("sub").join("token");
        write_sink(&sink, "secret-1").unwrap();
        write_sink(&sink, "secret-2").unwrap();
        assert_eq!(std::fs::read_to_string(&sink).unwrap(), "secret-2");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&sink).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
