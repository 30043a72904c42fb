//! Binding-rule selectors and bind names, over what a login's claims say about its bearer
//! ([`Identity`]): a go-bexpr subset (`value.role == "ci"`, `"admins" in list.groups`, `and`, `or`, `not`,
//! parentheses) and Consul's `${value.name}` interpolation.

use std::collections::{BTreeMap, BTreeSet};

/// What a valid JWT says about its bearer, as binding rules see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// `value.<name>` for each ClaimMappings target whose claim the token carried.
    pub values: BTreeMap<String, String>,
    /// `list.<name>` for each ListClaimMappings target whose claim the token carried.
    pub lists: BTreeMap<String, Vec<String>>,
    /// ClaimMappings targets the token did not carry: as in Consul, `${value.<name>}` interpolates them as
    /// "", while a selector that reads them never matches.
    pub unset_values: BTreeSet<String>,
}

/// A parsed binding-rule `Selector` (a subset of go-bexpr over `value.<name>` and `list.<name>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    expr: Option<Expr>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Match { target: Target, op: Op, value: String },
}

/// What a selector reads: `value` / `list` (the whole map) or one entry of it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Values,
    Value(String),
    Lists,
    List(String),
}

/// Match operators; `"x" in sel` is `sel contains "x"`. The `bool` is "negated" (`!=`, `not ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Equal(bool),
    Contains(bool),
    IsEmpty(bool),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(String),
    Sym(&'static str),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Word(s) => format!("'{s}'"),
            Tok::Sym(s) => format!("'{s}'"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Num(s) => format!("number {s}"),
        }
    }
}

/// Splits a selector into tokens with their 1-based character positions. Double-quoted strings take
/// JSON's escapes, backquoted ones none.
fn lex(text: &str) -> Result<Vec<(usize, Tok)>, String> {
    let (mut out, mut i) = (Vec::new(), 0);
    while let Some(c) = text[i..].chars().next() {
        let (rest, pos) = (&text[i..], text[..i].chars().count() + 1);
        let (tok, len) = if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        } else if let Some(sym) = ["==", "!=", ".", "[", "]", "(", ")"].into_iter().find(|s| rest.starts_with(s)) {
            (Tok::Sym(sym), sym.len())
        } else if c.is_ascii_alphabetic() {
            let n = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '/')).unwrap_or(rest.len());
            (Tok::Word(rest[..n].to_string()), n)
        } else if c.is_ascii_digit() || c == '-' {
            let n = 1 + rest[1..].find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len() - 1);
            if rest[..n].parse::<f64>().is_err() || rest[n..].starts_with(|c: char| c.is_alphanumeric() || c == '_') {
                return Err(format!("position {pos}: invalid number"));
            }
            (Tok::Num(rest[..n].to_string()), n)
        } else if c == '"' || c == '`' {
            let (bytes, mut n) = (rest.as_bytes(), 1);
            loop {
                match bytes.get(n) {
                    None => return Err(format!("position {pos}: unterminated string")),
                    Some(b'\\') if c == '"' => n += 2,
                    Some(&b) if b == c as u8 => break,
                    _ => n += 1,
                }
            }
            let s = if c == '`' {
                rest[1..n].to_string()
            } else {
                serde_json::from_str(&rest[..=n]).map_err(|_| format!("position {pos}: invalid escape in string"))?
            };
            (Tok::Str(s), n + 1)
        } else {
            return Err(format!("position {pos}: unexpected character {c:?}"));
        };
        out.push((pos, tok));
        i += len;
    }
    Ok(out)
}

type Join = fn(Box<Expr>, Box<Expr>) -> Expr;

struct Parser {
    toks: Vec<(usize, Tok)>,
    at: usize,
    end: usize,
}

impl Parser {
    fn pos(&self) -> usize {
        self.toks.get(self.at).map_or(self.end, |t| t.0)
    }

    fn is_kw(&self, ahead: usize, kw: &str) -> bool {
        matches!(self.toks.get(self.at + ahead), Some((_, Tok::Word(s))) if s == kw)
    }

    fn unexpected<T>(&self, wanted: &str) -> Result<T, String> {
        let found = self.toks.get(self.at).map_or("the end of the selector".to_string(), |t| t.1.describe());
        Err(format!("position {}: expected {wanted}, found {found}", self.pos()))
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).map(|t| t.1.clone());
        self.at += 1;
        t
    }

    /// `operand (kw operand)*`, joined left to right: `or` over `and` over `not`.
    fn chain(&mut self, kw: &str, operand: fn(&mut Self) -> Result<Expr, String>, join: Join) -> Result<Expr, String> {
        let mut left = operand(self)?;
        while self.is_kw(0, kw) {
            self.at += 1;
            left = join(Box::new(left), Box::new(operand(self)?));
        }
        Ok(left)
    }

    fn or(&mut self) -> Result<Expr, String> {
        self.chain("or", |p| p.chain("and", Self::not, Expr::And), Expr::Or)
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.is_kw(0, "not") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        if matches!(self.toks.get(self.at), Some((_, Tok::Sym("(")))) {
            self.at += 1;
            let inner = self.or()?;
            if self.next() != Some(Tok::Sym(")")) {
                self.at -= 1;
                return self.unexpected("')'");
            }
            return Ok(inner);
        }
        self.matcher()
    }

    /// A dotted path (`value.name`, `list["name"]`), or `None` when the next token starts none.
    fn path(&mut self) -> Result<Option<Vec<String>>, String> {
        let Some((_, Tok::Word(first))) = self.toks.get(self.at).cloned() else { return Ok(None) };
        self.at += 1;
        let mut parts = vec![first];
        loop {
            match self.toks.get(self.at).map(|t| &t.1) {
                Some(Tok::Sym(".")) => match self.toks.get(self.at + 1) {
                    Some((_, Tok::Word(s))) => parts.push(s.clone()),
                    _ => return (self.at += 1, self.unexpected("a name after '.'")).1,
                },
                Some(Tok::Sym("[")) => match (self.toks.get(self.at + 1), self.toks.get(self.at + 2)) {
                    (Some((_, Tok::Str(s))), Some((_, Tok::Sym("]")))) => {
                        parts.push(s.clone());
                        self.at += 1;
                    }
                    _ => return (self.at += 1, self.unexpected("a quoted name and ']' after '['")).1,
                },
                _ => return Ok(Some(parts)),
            }
            self.at += 2;
        }
    }

    fn value(&mut self) -> Result<String, String> {
        match self.toks.get(self.at).map(|t| t.1.clone()) {
            Some(Tok::Str(s) | Tok::Num(s)) => {
                self.at += 1;
                Ok(s)
            }
            Some(Tok::Word(_)) => Ok(self.path()?.unwrap_or_default().join(".")),
            _ => self.unexpected("a value"),
        }
    }

    fn matcher(&mut self) -> Result<Expr, String> {
        let start = self.pos();
        let first_is_literal = matches!(self.toks.get(self.at), Some((_, Tok::Str(_) | Tok::Num(_))));
        let path = if first_is_literal { None } else { self.path()? };
        if first_is_literal || self.is_kw(0, "in") || (self.is_kw(0, "not") && self.is_kw(1, "in")) {
            // `<value> in <selector>` / `<value> not in <selector>`
            let value = match path {
                Some(p) => p.join("."),
                None => self.value()?,
            };
            let negated = self.is_kw(0, "not");
            self.at += usize::from(negated);
            if !self.is_kw(0, "in") {
                return self.unexpected("'in' or 'not in'");
            }
            self.at += 1;
            let sel_pos = self.pos();
            let Some(p) = self.path()? else { return self.unexpected("a selector after 'in'") };
            return Self::build(sel_pos, p, Op::Contains(negated), value);
        }
        let Some(path) = path else { return self.unexpected("a selector, a value or '('") };
        let op_pos = self.pos();
        let op = match self.next() {
            Some(Tok::Sym("==")) => Op::Equal(false),
            Some(Tok::Sym("!=")) => Op::Equal(true),
            Some(Tok::Word(kw)) if kw == "contains" => Op::Contains(false),
            Some(Tok::Word(kw)) if kw == "not" && self.is_kw(0, "contains") => (self.at += 1, Op::Contains(true)).1,
            Some(Tok::Word(kw)) if kw == "matches" || (kw == "not" && self.is_kw(0, "matches")) => {
                return Err(format!("position {op_pos}: the 'matches' operator (regular expressions) is not supported"))
            }
            Some(Tok::Word(kw)) if kw == "is" && self.is_kw(0, "empty") => (self.at += 1, Op::IsEmpty(false)).1,
            Some(Tok::Word(kw)) if kw == "is" && self.is_kw(0, "not") && self.is_kw(1, "empty") => {
                (self.at += 2, Op::IsEmpty(true)).1
            }
            _ => {
                self.at -= 1;
                return self.unexpected("an operator (==, !=, contains, not contains, in, is empty, is not empty)");
            }
        };
        let value = if matches!(op, Op::IsEmpty(_)) { String::new() } else { self.value()? };
        Self::build(start, path, op, value)
    }

    /// Checks a selector names `value`/`list` (optionally one entry) and suits the operator.
    fn build(pos: usize, path: Vec<String>, op: Op, value: String) -> Result<Expr, String> {
        let target = match (path[0].as_str(), path.get(1).cloned(), path.len()) {
            ("value", None, _) => Target::Values,
            ("value", Some(n), 2) => Target::Value(n),
            ("list", None, _) => Target::Lists,
            ("list", Some(n), 2) => Target::List(n),
            _ => {
                return Err(format!(
                    "position {pos}: unknown selector \"{}\" (use value.<name> or list.<name>)",
                    path.join(".")
                ))
            }
        };
        if matches!(op, Op::Equal(_)) && !matches!(target, Target::Value(_)) {
            return Err(format!(
                "position {pos}: == and != apply to value.<name> only; \"{}\" is a collection (use in or contains)",
                path.join(".")
            ));
        }
        Ok(Expr::Match { target, op, value })
    }
}

/// Parses a binding rule's `Selector`. An empty selector matches every identity. Errors name the
/// 1-based character position, e.g. `position 14: expected a value, found the end of the selector`.
pub fn parse_selector(selector: &str) -> Result<Selector, String> {
    if selector.is_empty() {
        return Ok(Selector { expr: None });
    }
    let toks = lex(selector)?;
    let mut p = Parser { toks, at: 0, end: selector.chars().count() + 1 };
    let expr = p.or()?;
    if p.at < p.toks.len() {
        return p.unexpected("'and', 'or' or the end of the selector");
    }
    Ok(Selector { expr: Some(expr) })
}

impl Expr {
    /// `Err(())` when a selector reads an entry the identity lacks: bexpr fails, Consul counts it as no match.
    fn eval(&self, id: &Identity) -> Result<bool, ()> {
        let (target, op, value) = match self {
            Expr::Or(a, b) => return Ok(a.eval(id)? || b.eval(id)?),
            Expr::And(a, b) => return Ok(a.eval(id)? && b.eval(id)?),
            Expr::Not(a) => return Ok(!a.eval(id)?),
            Expr::Match { target, op, value } => (target, op, value),
        };
        let (hit, negated) = match (target, *op) {
            (Target::Value(n), op) => {
                let v = id.values.get(n).ok_or(())?;
                match op {
                    Op::Equal(neg) => (v == value, neg),
                    Op::Contains(neg) => (v.contains(value.as_str()), neg),
                    Op::IsEmpty(neg) => (v.is_empty(), neg),
                }
            }
            (Target::List(n), op) => {
                let l = id.lists.get(n).ok_or(())?;
                match op {
                    Op::Contains(neg) => (l.contains(value), neg),
                    Op::IsEmpty(neg) => (l.is_empty(), neg),
                    Op::Equal(_) => return Err(()),
                }
            }
            (Target::Values, Op::Contains(neg)) => (id.values.contains_key(value), neg),
            (Target::Values, Op::IsEmpty(neg)) => (id.values.is_empty(), neg),
            (Target::Lists, Op::Contains(neg)) => (id.lists.contains_key(value), neg),
            (Target::Lists, Op::IsEmpty(neg)) => (id.lists.is_empty(), neg),
            (_, Op::Equal(_)) => return Err(()),
        };
        Ok(hit != negated)
    }
}

impl Selector {
    /// Whether a login with this identity is bound by the rule.
    pub fn matches(&self, identity: &Identity) -> bool {
        self.expr.as_ref().is_none_or(|e| e.eval(identity).unwrap_or(false))
    }
}

/// Consul's `BindName` interpolation: `${value.<name>}` is replaced by the value (`$${` is a literal `${`).
/// `${list.<name>}` is refused (lists cannot be interpolated) and so is any other unknown variable. The
/// caller checks the result for its bind type ([`valid_service_name`], [`valid_role_name`],
/// [`valid_policy_name`]); at rule creation, interpolate against [`placeholder_identity`], as Consul does.
pub fn interpolate_bind_name(template: &str, identity: &Identity) -> Result<String, String> {
    let (mut out, mut rest) = (String::new(), template);
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = rest.strip_prefix("${") {
            let end = after.find('}').ok_or("unterminated \"${\" in bind name")?;
            let name = after[..end].trim();
            let value = match name.strip_prefix("value.") {
                Some(n) if identity.values.contains_key(n) => identity.values[n].as_str(),
                Some(n) if identity.unset_values.contains(n) => "",
                _ if name.starts_with("list.") => {
                    return Err(format!("list variable {name} cannot be used in a bind name; use a value.<name>"))
                }
                _ => return Err(format!("unknown variable accessed: {name}")),
            };
            out.push_str(value);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn name_chars(s: &str, max: usize, ok: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.len() <= max && s.chars().all(ok)
}

/// Consul's service (and node) identity name: `^[a-z0-9]([a-z0-9\-_]*[a-z0-9])?$`, at most 256 bytes.
pub fn valid_service_name(s: &str) -> bool {
    let edge = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    name_chars(s, 256, |c| edge(c) || c == '-' || c == '_') && s.starts_with(edge) && s.ends_with(edge)
}

/// Consul's role name: `^[A-Za-z0-9\-_]{1,256}$`.
pub fn valid_role_name(s: &str) -> bool {
    name_chars(s, 256, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Policy names as Conclave takes them for bind names: `^[A-Za-z0-9\-_]{1,256}$` (as roles).
pub fn valid_policy_name(s: &str) -> bool {
    valid_role_name(s)
}
