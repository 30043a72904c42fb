//! `conclave kv get|put|delete|export|import`, with Consul's flags and output: raw values, `key:value`
//! lines for `-recurse`, the aligned block for `-detailed`, and Consul's `Success!` / `Error!` lines.

use std::io::Read;

use anyhow::{bail, Context};
use base64::Engine;
use clap::{Args, Subcommand};
use serde_json::Value;

use super::client::HttpFlags;

#[derive(Subcommand, Debug)]
pub enum KvCommand {
    /// Reads a value, or the keys under a prefix.
    Get(GetArgs),
    /// Writes a value.
    Put(PutArgs),
    /// Deletes a key or every key under a prefix.
    Delete(DeleteArgs),
    /// Prints a prefix as JSON that `kv import` reads.
    Export(ExportArgs),
    /// Writes the entries of `kv export`'s JSON.
    Import(ImportArgs),
}

#[derive(Args, Debug)]
pub struct GetArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// Print the value base64-encoded.
    #[arg(long)]
    pub base64: bool,
    /// Print every field of the entry.
    #[arg(long)]
    pub detailed: bool,
    /// List key names under the prefix.
    #[arg(long)]
    pub keys: bool,
    /// Read every key under the prefix.
    #[arg(long)]
    pub recurse: bool,
    /// Where `-keys` cuts key names.
    #[arg(long, default_value = "/")]
    pub separator: String,
    pub key: Option<String>,
}

#[derive(Args, Debug)]
pub struct PutArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// Take the lock on the key with `-session`.
    #[arg(long)]
    pub acquire: bool,
    /// The data is base64-encoded.
    #[arg(long)]
    pub base64: bool,
    /// Write only if the key's modify index is `-modify-index`.
    #[arg(long)]
    pub cas: bool,
    #[arg(long = "modify-index", default_value_t = 0)]
    pub modify_index: u64,
    #[arg(long, default_value_t = 0)]
    pub flags: u64,
    /// Give back the lock on the key held by `-session`.
    #[arg(long)]
    pub release: bool,
    #[arg(long, default_value = "")]
    pub session: String,
    pub key: String,
    /// The value, `@file` to read a file, or `-` to read standard input.
    pub data: Option<String>,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long)]
    pub cas: bool,
    #[arg(long = "modify-index", default_value_t = 0)]
    pub modify_index: u64,
    #[arg(long)]
    pub recurse: bool,
    pub key: String,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    pub prefix: Option<String>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// Prepended to every imported key.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// The JSON, `@file` to read a file, or `-` (or nothing) to read standard input.
    pub data: Option<String>,
}

pub fn kv(command: KvCommand) -> anyhow::Result<()> {
    match command {
        KvCommand::Get(args) => get(args),
        KvCommand::Put(args) => put(args),
        KvCommand::Delete(args) => delete(args),
        KvCommand::Export(args) => export(args),
        KvCommand::Import(args) => import(args),
    }
}

/// A key as a path segment: `/` stays a separator, everything else that needs it is escaped.
pub fn key_path(key: &str) -> String {
    const ESCAPED: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(key, ESCAPED).to_string()
}

fn value_bytes(entry: &Value) -> Vec<u8> {
    entry["Value"].as_str().and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok()).unwrap_or_default()
}

fn shown_value(entry: &Value, as_base64: bool) -> String {
    if as_base64 {
        entry["Value"].as_str().unwrap_or("").to_string()
    } else {
        String::from_utf8_lossy(&value_bytes(entry)).into_owned()
    }
}

fn detailed(entry: &Value, as_base64: bool) -> String {
    let session = entry["Session"].as_str().unwrap_or("-");
    let rows = vec![
        vec!["CreateIndex".to_string(), entry["CreateIndex"].to_string()],
        vec!["Flags".to_string(), entry["Flags"].to_string()],
        vec!["Key".to_string(), entry["Key"].as_str().unwrap_or("").to_string()],
        vec!["LockIndex".to_string(), entry["LockIndex"].to_string()],
        vec!["ModifyIndex".to_string(), entry["ModifyIndex"].to_string()],
        vec!["Session".to_string(), session.to_string()],
        vec!["Value".to_string(), shown_value(entry, as_base64)],
    ];
    super::client::columns(&rows)
}

fn get(args: GetArgs) -> anyhow::Result<()> {
    let key = args.key.clone().unwrap_or_default();
    if key.is_empty() && !args.recurse && !args.keys {
        bail!("Error! Missing KEY argument");
    }
    if args.keys {
        let separator = percent_encoding::utf8_percent_encode(&args.separator, percent_encoding::NON_ALPHANUMERIC);
        let response =
            args.http.call("GET", &format!("/v1/kv/{}?keys&separator={separator}", key_path(&key)), vec![])?;
        if response.status == 404 {
            return Ok(());
        }
        let names: Value = ok_json(response)?;
        for name in names.as_array().into_iter().flatten() {
            println!("{}", name.as_str().unwrap_or(""));
        }
        return Ok(());
    }
    let path =
        if args.recurse { format!("/v1/kv/{}?recurse", key_path(&key)) } else { format!("/v1/kv/{}", key_path(&key)) };
    let response = args.http.call("GET", &path, vec![])?;
    if response.status == 404 {
        if args.recurse {
            return Ok(());
        }
        bail!("Error! No key exists at: {key}");
    }
    let entries: Value = ok_json(response)?;
    let entries = entries.as_array().cloned().unwrap_or_default();
    if args.detailed {
        let blocks: Vec<String> = entries.iter().map(|e| detailed(e, args.base64)).collect();
        println!("{}", blocks.join("\n\n"));
        return Ok(());
    }
    for entry in &entries {
        if args.recurse {
            println!("{}:{}", entry["Key"].as_str().unwrap_or(""), shown_value(entry, args.base64));
        } else if args.base64 {
            println!("{}", shown_value(entry, true));
        } else {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(&value_bytes(entry))?;
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}

fn ok_json(response: crate::env::http_client::HttpResponse) -> anyhow::Result<Value> {
    if response.status != 200 {
        bail!(
            "Error! Unexpected response code: {} ({})",
            response.status,
            String::from_utf8_lossy(&response.body).trim()
        );
    }
    Ok(response.json()?)
}

/// The data argument: literal, `@file`, or `-` for standard input.
fn read_data(data: Option<&str>, stdin_when_missing: bool) -> anyhow::Result<Vec<u8>> {
    match data {
        Some("-") => read_stdin(),
        None if stdin_when_missing => read_stdin(),
        None => Ok(Vec::new()),
        Some(text) => match text.strip_prefix('@') {
            Some(file) => std::fs::read(file).with_context(|| format!("Error! Failed to read file {file}")),
            None => Ok(text.as_bytes().to_vec()),
        },
    }
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut buffer = Vec::new();
    std::io::stdin().read_to_end(&mut buffer)?;
    Ok(buffer)
}

fn put(args: PutArgs) -> anyhow::Result<()> {
    let key = &args.key;
    if (args.acquire || args.release) && args.session.is_empty() {
        bail!("Error! Missing -session (required with -acquire and -release)");
    }
    let mut data = read_data(args.data.as_deref(), false)?;
    if args.base64 {
        data = base64::engine::general_purpose::STANDARD
            .decode(String::from_utf8_lossy(&data).trim())
            .context("Error! Cannot base 64 decode data")?;
    }
    let mut query = vec![format!("flags={}", args.flags)];
    if args.cas {
        query.push(format!("cas={}", args.modify_index));
    }
    if args.acquire {
        query.push(format!("acquire={}", args.session));
    }
    if args.release {
        query.push(format!("release={}", args.session));
    }
    let response = args.http.call("PUT", &format!("/v1/kv/{}?{}", key_path(key), query.join("&")), data)?;
    let written: Value = ok_json(response).map_err(|e| anyhow::anyhow!("Error! Failed writing data: {e}"))?;
    match (written.as_bool() == Some(true), args.cas, args.acquire, args.release) {
        (true, _, true, _) => println!("Success! Lock acquired on: {key}"),
        (true, _, _, true) => println!("Success! Lock released on: {key}"),
        (true, _, _, _) => println!("Success! Data written to: {key}"),
        (false, true, _, _) => bail!("Error! Did not write to {key}: CAS failed"),
        (false, _, true, _) => bail!("Error! Failed to acquire lock on: {key}"),
        (false, _, _, true) => bail!("Error! Failed to release lock on: {key}"),
        (false, _, _, _) => bail!("Error! Failed writing data to: {key}"),
    }
    Ok(())
}

fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    if args.cas && args.recurse {
        bail!("Cannot specify both -cas and -recurse!");
    }
    let key = &args.key;
    let query = match (args.recurse, args.cas) {
        (true, _) => "?recurse".to_string(),
        (false, true) => format!("?cas={}", args.modify_index),
        _ => String::new(),
    };
    let response = args.http.call("DELETE", &format!("/v1/kv/{}{query}", key_path(key)), vec![])?;
    let deleted: Value = ok_json(response).map_err(|e| anyhow::anyhow!("Error! Failed deleting data: {e}"))?;
    match (deleted.as_bool() == Some(true), args.recurse) {
        (true, true) => println!("Success! Deleted keys with prefix: {key}"),
        (true, false) => println!("Success! Deleted key: {key}"),
        (false, _) => bail!("Error! Did not delete key {key}: CAS failed"),
    }
    Ok(())
}

fn export(args: ExportArgs) -> anyhow::Result<()> {
    let prefix = args.prefix.unwrap_or_default();
    let response = args.http.call("GET", &format!("/v1/kv/{}?recurse", key_path(&prefix)), vec![])?;
    let entries = if response.status == 404 { Value::Array(vec![]) } else { ok_json(response)? };
    let exported: Vec<Value> = entries
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| serde_json::json!({"key": e["Key"], "flags": e["Flags"], "value": e["Value"].as_str().unwrap_or("")}))
        .collect();
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(&exported, &mut serializer)?;
    println!("{}", String::from_utf8_lossy(&out));
    Ok(())
}

fn import(args: ImportArgs) -> anyhow::Result<()> {
    let data = read_data(args.data.as_deref(), true)?;
    let entries: Vec<Value> = serde_json::from_slice(&data).context("Error! Cannot unmarshal data")?;
    for entry in entries {
        let key = format!("{}{}", args.prefix, entry["key"].as_str().unwrap_or(""));
        let value = base64::engine::general_purpose::STANDARD
            .decode(entry["value"].as_str().unwrap_or(""))
            .with_context(|| format!("Error! Cannot base 64 decode value of {key}"))?;
        let flags = entry["flags"].as_u64().unwrap_or(0);
        let response = args.http.call("PUT", &format!("/v1/kv/{}?flags={flags}", key_path(&key)), value)?;
        ok_json(response).map_err(|e| anyhow::anyhow!("Error! Failed writing data for key {key}: {e}"))?;
        println!("Imported: {key}");
    }
    Ok(())
}
