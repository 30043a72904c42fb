//! `?filter=` expressions: the common subset of go-bexpr that Consul clients send — `==`, `!=`, `in`,
//! `not in`, `contains`, `not contains`, `is empty`, `is not empty`, `and`, `or`, `not` and parentheses —
//! evaluated against the JSON an endpoint answers. A selector is a dotted path (`Service.Tags`,
//! `Meta.team`); where the path crosses a list, the match holds if it holds for any element.

use serde_json::Value;

use super::ApiError;

/// Longest filter accepted, and deepest nesting, so a hostile filter cannot exhaust the stack.
pub const FILTER_BYTES_MAX: usize = 4096;
pub const FILTER_DEPTH_MAX: usize = 32;

#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Equal(Vec<String>, String),
    NotEqual(Vec<String>, String),
    /// `value in Selector` and `Selector contains value`.
    Contains(Vec<String>, String),
    IsEmpty(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Eq,
    NotEq,
}

fn invalid(what: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Failed to create boolean expression evaluator: {what}"))
}

fn tokenize(text: &str) -> Result<Vec<Token>, ApiError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            '=' | '!' => {
                chars.next();
                if chars.next() != Some('=') {
                    return Err(invalid(format!("expected '=' after '{c}'")));
                }
                tokens.push(if c == '=' { Token::Eq } else { Token::NotEq });
            }
            '"' | '`' => {
                let quote = c;
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next() {
                        None => return Err(invalid("unterminated string")),
                        Some('\\') if quote == '"' => match chars.next() {
                            Some(escaped) => value.push(escaped),
                            None => return Err(invalid("unterminated string")),
                        },
                        Some(ch) if ch == quote => break,
                        Some(ch) => value.push(ch),
                    }
                }
                tokens.push(Token::Quoted(value));
            }
            _ => {
                let mut word = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch.is_whitespace() || matches!(ch, '(' | ')' | '=' | '!' | '"' | '`') {
                        break;
                    }
                    word.push(ch);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek_word(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.at), Some(Token::Word(w)) if w == word)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn expect_word(&mut self, word: &str) -> Result<(), ApiError> {
        if self.peek_word(word) {
            self.at += 1;
            Ok(())
        } else {
            Err(invalid(format!("expected '{word}'")))
        }
    }

    fn or(&mut self) -> Result<Filter, ApiError> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.at += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, ApiError> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.at += 1;
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, ApiError> {
        self.depth += 1;
        if self.depth > FILTER_DEPTH_MAX {
            return Err(invalid("expression nested too deeply"));
        }
        let result = if self.peek_word("not") {
            self.at += 1;
            Ok(Filter::Not(Box::new(self.unary()?)))
        } else if self.tokens.get(self.at) == Some(&Token::Open) {
            self.at += 1;
            let inner = self.or()?;
            match self.next() {
                Some(Token::Close) => Ok(inner),
                _ => Err(invalid("expected ')'")),
            }
        } else {
            self.matcher()
        };
        self.depth -= 1;
        result
    }

    fn selector(text: &str) -> Result<Vec<String>, ApiError> {
        let path: Vec<String> = text.split('.').map(str::to_string).collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(invalid(format!("invalid selector {text:?}")));
        }
        Ok(path)
    }

    fn value(&mut self) -> Result<String, ApiError> {
        match self.next() {
            Some(Token::Quoted(v)) | Some(Token::Word(v)) => Ok(v),
            _ => Err(invalid("expected a value")),
        }
    }

    fn matcher(&mut self) -> Result<Filter, ApiError> {
        let first = self.next().ok_or_else(|| invalid("unexpected end of expression"))?;
        // `value in Selector` / `value not in Selector`
        let value_first = matches!(first, Token::Quoted(_))
            || self.peek_word("in")
            || (self.peek_word("not") && matches!(self.tokens.get(self.at + 1), Some(Token::Word(w)) if w == "in"));
        if value_first {
            let value = match first {
                Token::Quoted(v) | Token::Word(v) => v,
                _ => return Err(invalid("expected a value")),
            };
            let negated = self.peek_word("not");
            if negated {
                self.at += 1;
            }
            self.expect_word("in")?;
            let selector = match self.next() {
                Some(Token::Word(w)) => Self::selector(&w)?,
                _ => return Err(invalid("expected a selector after 'in'")),
            };
            let filter = Filter::Contains(selector, value);
            return Ok(if negated { Filter::Not(Box::new(filter)) } else { filter });
        }
        let Token::Word(selector) = first else { return Err(invalid("expected a selector")) };
        let selector = Self::selector(&selector)?;
        match self.next() {
            Some(Token::Eq) => Ok(Filter::Equal(selector, self.value()?)),
            Some(Token::NotEq) => Ok(Filter::NotEqual(selector, self.value()?)),
            Some(Token::Word(w)) if w == "is" => {
                let negated = self.peek_word("not");
                if negated {
                    self.at += 1;
                }
                self.expect_word("empty")?;
                let filter = Filter::IsEmpty(selector);
                Ok(if negated { Filter::Not(Box::new(filter)) } else { filter })
            }
            Some(Token::Word(w)) if w == "contains" => Ok(Filter::Contains(selector, self.value()?)),
            Some(Token::Word(w)) if w == "not" => {
                self.expect_word("contains")?;
                Ok(Filter::Not(Box::new(Filter::Contains(selector, self.value()?))))
            }
            _ => Err(invalid("expected an operator (==, !=, is empty, contains, in)")),
        }
    }
}

/// Parses a filter expression; an empty one is `None` (everything matches).
pub fn parse_filter(text: &str) -> Result<Option<Filter>, ApiError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    if text.len() > FILTER_BYTES_MAX {
        return Err(invalid(format!("filter longer than {FILTER_BYTES_MAX} bytes")));
    }
    let mut parser = Parser { tokens: tokenize(text)?, at: 0, depth: 0 };
    let filter = parser.or()?;
    if parser.at != parser.tokens.len() {
        return Err(invalid("unexpected input after the expression"));
    }
    Ok(Some(filter))
}

/// The values a selector reaches, descending into every element of lists on the way.
fn resolve<'a>(value: &'a Value, path: &[String], out: &mut Vec<&'a Value>) {
    match (value, path.split_first()) {
        (_, None) => out.push(value),
        (Value::Array(items), Some(_)) => items.iter().for_each(|item| resolve(item, path, out)),
        (Value::Object(map), Some((head, rest))) => {
            if let Some(child) = map.get(head) {
                resolve(child, rest, out);
            }
        }
        _ => {}
    }
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

impl Filter {
    pub fn matches(&self, value: &Value) -> bool {
        let found = |path: &[String]| {
            let mut out = Vec::new();
            resolve(value, path, &mut out);
            out
        };
        match self {
            Filter::And(a, b) => a.matches(value) && b.matches(value),
            Filter::Or(a, b) => a.matches(value) || b.matches(value),
            Filter::Not(inner) => !inner.matches(value),
            Filter::Equal(path, wanted) => found(path).iter().any(|v| as_text(v).as_deref() == Some(wanted)),
            Filter::NotEqual(path, wanted) => !found(path).iter().any(|v| as_text(v).as_deref() == Some(wanted)),
            Filter::Contains(path, wanted) => found(path).iter().any(|v| match v {
                Value::Array(items) => items.iter().any(|item| as_text(item).as_deref() == Some(wanted)),
                Value::Object(map) => map.contains_key(wanted),
                Value::String(s) => s.contains(wanted.as_str()),
                _ => false,
            }),
            Filter::IsEmpty(path) => {
                let values = found(path);
                values.is_empty() || values.iter().all(|v| is_empty(v))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filter_expressions_select_as_consul_does() {
        let service = json!({"Service": "web", "Tags": ["prod", "v1"], "Meta": {"team": "infra"}, "Port": 80, "Address": "",
            "Checks": [{"Status": "passing"}, {"Status": "critical"}]});
        let cases: &[(&str, bool)] = &[
            ("Service == web", true),
            ("Service == \"web\"", true),
            ("Service != web", false),
            ("\"prod\" in Tags", true),
            ("dev in Tags", false),
            ("\"dev\" not in Tags", true),
            ("Tags contains v1", true),
            ("Tags not contains v1", false),
            ("Meta.team == infra", true),
            ("Meta.team == other", false),
            ("Port == 80", true),
            ("Address is empty", true),
            ("Meta is not empty", true),
            ("Meta.missing is empty", true),
            ("Checks.Status == critical", true),
            ("Service == web and not (Port == 81 or Meta.team != infra)", true),
            ("Service == db or Port == 80", true),
            ("not Service == web", false),
        ];
        for (text, want) in cases {
            let filter = parse_filter(text).unwrap().unwrap();
            assert_eq!(filter.matches(&service), *want, "{text}");
        }
    }

    #[test]
    fn malformed_filters_are_400s() {
        for text in [
            "Service ==",
            "(Service == web",
            "Service = web",
            "Service web",
            "\"x\" in",
            "a == \"open",
            "Service == web)",
        ] {
            let error = parse_filter(text).unwrap_err();
            assert_eq!(error.status, 400, "{text}");
        }
        let deep = format!("{}Service == web{}", "(".repeat(100), ")".repeat(100));
        assert_eq!(parse_filter(&deep).unwrap_err().status, 400);
        assert!(parse_filter("  ").unwrap().is_none());
    }
}
