//! A type's business rules (`rules.toml`): CEL expressions compiled once at load, each with an id,
//! a message template and the pointer of the field it judges.

use std::sync::Arc;

use std::collections::HashMap;

use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::Val;
use cel::{Context, Program, Value as CelValue};
use receipts_domain::Reason;
use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use super::files::FileError;
use super::functions;
use super::vat::VatTable;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default, rename = "rule")]
    rules: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: Spanned<String>,
    /// The reason code (default: the id); several rules may share one.
    #[serde(default)]
    code: Option<Spanned<String>>,
    expr: Spanned<String>,
    message: Spanned<String>,
    pointer: Spanned<String>,
    #[serde(default)]
    for_each: Option<Spanned<String>>,
    #[serde(default)]
    when: Option<Spanned<String>>,
}

/// One compiled rule.
pub(crate) struct Rule {
    pub id: String,
    /// The code of its reasons.
    code: String,
    /// The array the rule runs over, once per item (`item`, `index`).
    pub for_each: Option<String>,
    when: Option<Program>,
    expr: Program,
    message: Vec<Piece>,
    /// With `{index}` for the item's index.
    pointer: String,
    /// `(line, expression source)` of every expression, for the field-name check.
    pub sources: Vec<(usize, String)>,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

enum Piece {
    Text(String),
    Value(Program),
}

/// Compiles every rule of `text` (the content of `rules.toml`).
pub(crate) fn compile(text: &str) -> Result<Vec<Rule>, Vec<FileError>> {
    let file: RulesFile = toml::from_str(text).map_err(|e| vec![FileError::toml(text, &e)])?;
    let env = functions::env();
    let mut errors = Vec::new();
    let mut rules = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for spec in file.rules {
        let line = |span: std::ops::Range<usize>| line_of(text, span.start);
        let id = spec.id.get_ref().clone();
        if !is_rule_id(&id) {
            let message = format!("rule id {id:?} must be lowercase letters, digits and '-'");
            errors.push(FileError::at(line(spec.id.span()), message));
        }
        let code = spec
            .code
            .as_ref()
            .map_or_else(|| id.clone(), |c| c.get_ref().clone());
        if let Some(c) = spec.code.as_ref().filter(|c| !is_rule_id(c.get_ref())) {
            let message = format!(
                "code {:?} must be lowercase letters, digits and '-'",
                c.get_ref()
            );
            errors.push(FileError::at(line(c.span()), message));
        }
        if !ids.insert(id.clone()) {
            errors.push(FileError::at(
                line(spec.id.span()),
                format!("rule id {id:?} is used twice"),
            ));
        }
        let mut sources = Vec::new();
        let mut program = |source: &Spanned<String>, what: &str| -> Option<Program> {
            let at = line(source.span());
            sources.push((at, source.get_ref().clone()));
            match env.compile(source.get_ref()) {
                Ok(program) => Some(program),
                Err(e) => {
                    let message = format!("rule {id:?}: the {what} does not compile: {e}");
                    errors.push(FileError::at(at, message));
                    None
                }
            }
        };
        let expr = program(&spec.expr, "expression");
        // `Some(None)`: no condition; `None`: a condition that does not compile.
        let when = match &spec.when {
            None => Some(None),
            Some(w) => program(w, "`when` condition").map(Some),
        };
        let mut message = Vec::new();
        match split_template(spec.message.get_ref()) {
            Ok(parts) => {
                for (text, is_expression) in parts {
                    if is_expression {
                        // `string()` formats decimals, numbers and text alike.
                        let wrapped = Spanned::new(spec.message.span(), format!("string({text})"));
                        if let Some(p) = program(&wrapped, "message") {
                            message.push(Piece::Value(p));
                        }
                    } else {
                        message.push(Piece::Text(text));
                    }
                }
            }
            Err(e) => errors.push(FileError::at(
                line(spec.message.span()),
                format!("rule {id:?}: {e}"),
            )),
        }
        let pointer = spec.pointer.get_ref().clone();
        let for_each = spec.for_each.as_ref().map(|f| f.get_ref().clone());
        let pointer_ok =
            pointer.is_empty() || super::pointer::check(&pointer.replace("{index}", "0")).is_ok();
        if !pointer_ok {
            let message = format!("rule {id:?}: pointer {pointer:?} is not a JSON pointer");
            errors.push(FileError::at(line(spec.pointer.span()), message));
        }
        if pointer.contains("{index}") && for_each.is_none() {
            let message = format!("rule {id:?}: {{index}} in the pointer needs `for_each`");
            errors.push(FileError::at(line(spec.pointer.span()), message));
        }
        if let Some(f) = &spec.for_each
            && super::pointer::check(f.get_ref()).is_err()
        {
            let message = format!(
                "rule {id:?}: for_each {:?} is not a JSON pointer",
                f.get_ref()
            );
            errors.push(FileError::at(line(f.span()), message));
        }
        if let (Some(expr), Some(when)) = (expr, when) {
            rules.push(Rule {
                id,
                code,
                for_each,
                when,
                expr,
                message,
                pointer,
                sources,
            });
        }
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(errors)
    }
}

fn is_rule_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// 1-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// Splits `text ${expr} text` into `(part, is_expression)`.
fn split_template(template: &str) -> Result<Vec<(String, bool)>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        parts.push((rest[..start].to_owned(), false));
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("message {template:?} has an unclosed ${{"))?;
        parts.push((after[..end].to_owned(), true));
        rest = &after[end + 1..];
    }
    parts.push((rest.to_owned(), false));
    Ok(parts)
}

/// What the rules see of one document.
pub(crate) struct Input<'a> {
    pub document: &'a Value,
    /// RFC 3339 submission time (the event's, not the wall clock).
    pub submitted_at: String,
    pub vat: &'a Arc<VatTable>,
    /// Whether the schema already found problems: rules that cannot be evaluated are then
    /// skipped (their inputs were reported), not reported themselves.
    pub schema_failed: bool,
}

/// Runs `rules` over the input; every failing rule is a reason. Reasons come in rule order
/// (for one rule, in item order), whatever order they are evaluated in.
pub(crate) fn run(rules: &[Rule], input: &Input<'_>) -> Vec<Reason> {
    let mut found: Vec<(usize, Reason)> = Vec::new();
    let mut context = Context::with_env(functions::env());
    context.add_variable_as_val("receipt", borrowed(input.document));
    context.add_variable_from_value("submitted_at", input.submitted_at.clone());
    context.add_variable_as_val("vat", Box::new(functions::VatVal(Arc::clone(input.vat))));
    for (n, rule) in rules.iter().enumerate() {
        if rule.for_each.is_none() {
            evaluate(n, rule, &context, None, input, &mut found);
        }
    }
    // Item rules by array: each item is converted and scoped once for all of its rules.
    let mut arrays: Vec<&str> = rules.iter().filter_map(|r| r.for_each.as_deref()).collect();
    arrays.sort_unstable();
    arrays.dedup();
    for array in arrays {
        let Some(items) = input.document.pointer(array).and_then(Value::as_array) else {
            continue;
        };
        for (index, item) in items.iter().enumerate() {
            let mut scope = context.new_inner_scope();
            scope.add_variable_as_val("item", borrowed(item));
            scope.add_variable_from_value("index", index as i64);
            for (n, rule) in rules.iter().enumerate() {
                if rule.for_each.as_deref() == Some(array) {
                    evaluate(n, rule, &scope, Some(index), input, &mut found);
                }
            }
        }
    }
    found.sort_by_key(|(n, _)| *n);
    found.into_iter().map(|(_, reason)| reason).collect()
}

/// `value` as a CEL value that borrows its strings from it (no copy of the document's text).
fn borrowed(value: &Value) -> Box<dyn Val + '_> {
    match value {
        Value::Null => Box::new(CelNull),
        Value::Bool(b) => Box::new(CelBool::from(*b)),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Box::new(CelInt::from(i)),
            (None, Some(u)) => Box::new(CelUInt::from(u)),
            _ => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::String(text) => Box::new(CelString::from(text.as_str())),
        Value::Array(items) => Box::new(CelList::from(
            items.iter().map(borrowed).collect::<Vec<_>>(),
        )),
        Value::Object(members) => Box::new(CelMap::from(
            members
                .iter()
                .map(|(name, value)| (CelMapKey::from(name.as_str()), borrowed(value)))
                .collect::<HashMap<_, _>>(),
        )),
    }
}

fn evaluate(
    n: usize,
    rule: &Rule,
    context: &Context<'_, '_>,
    index: Option<usize>,
    input: &Input<'_>,
    found: &mut Vec<(usize, Reason)>,
) {
    let pointer = || match index {
        Some(index) => rule.pointer.replace("{index}", &index.to_string()),
        None => rule.pointer.clone(),
    };
    let outcome = |program: &Program| match program.execute(context) {
        Ok(CelValue::Bool(ok)) => Ok(ok),
        Ok(other) => Err(format!("evaluated to {other:?}, not a bool")),
        Err(e) => Err(e.to_string()),
    };
    let applies = match &rule.when {
        Some(when) => outcome(when),
        None => Ok(true),
    };
    match applies.and_then(|applies| {
        if applies {
            outcome(&rule.expr)
        } else {
            Ok(true)
        }
    }) {
        Ok(true) => {}
        Ok(false) => found.push((
            n,
            Reason::new(pointer(), rule.code.clone(), render(rule, context)),
        )),
        Err(_) if input.schema_failed => {}
        // An overflow is the numbers' fault, not the rule's.
        Err(error) if error.contains("decimal overflow") => found.push((
            n,
            Reason::new(
                pointer(),
                crate::reasons::code::OUT_OF_RANGE,
                format!("a number is too large: {error}"),
            ),
        )),
        Err(error) => found.push((
            n,
            Reason::new(
                pointer(),
                rule.code.clone(),
                format!("could not be checked: {error}"),
            ),
        )),
    }
}

fn render(rule: &Rule, context: &Context<'_, '_>) -> String {
    let mut message = String::new();
    for piece in &rule.message {
        match piece {
            Piece::Text(text) => message.push_str(text),
            Piece::Value(program) => match program.execute(context) {
                Ok(CelValue::String(s)) => message.push_str(&s),
                Ok(other) => message.push_str(&format!("{other:?}")),
                Err(_) => message.push('?'),
            },
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(rules: &str, document: Value) -> Vec<(String, String, String)> {
        let rules = compile(rules).expect("rules compile");
        let vat = Arc::new(VatTable::default());
        let input = Input {
            document: &document,
            submitted_at: "2026-11-14T09:00:00Z".into(),
            vat: &vat,
            schema_failed: false,
        };
        run(&rules, &input)
            .into_iter()
            .map(|r| (r.path, r.code, r.message))
            .collect()
    }

    #[test]
    fn per_item_rules_with_decimal_arithmetic_and_messages() {
        let rules = r#"
            [[rule]]
            id = "net-amount-mismatch"
            for_each = "/lines"
            expr = "(decimal(item.quantity) * decimal(item.unit_price)).round(2) == decimal(item.net_amount)"
            message = "expected ${(decimal(item.quantity) * decimal(item.unit_price)).round(2)}, found ${item.net_amount}"
            pointer = "/lines/{index}/net_amount"

            [[rule]]
            id = "total-mismatch"
            expr = "sum(receipt.lines.map(l, decimal(l.net_amount))) == decimal(receipt.total)"
            message = "lines add up to ${sum_of(receipt.lines, 'net_amount')}"
            pointer = "/total"
        "#;
        let document = serde_json::json!({
            "lines": [
                {"quantity": "4", "unit_price": "1.20", "net_amount": "4.80"},
                {"quantity": "3", "unit_price": "0.333", "net_amount": "1.01"}
            ],
            "total": "5.80"
        });
        assert_eq!(
            reasons(rules, document),
            [
                (
                    "/lines/1/net_amount".to_owned(),
                    "net-amount-mismatch".to_owned(),
                    "expected 1.00, found 1.01".to_owned()
                ),
                (
                    "/total".to_owned(),
                    "total-mismatch".to_owned(),
                    "lines add up to 5.81".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn when_errors_and_domain_functions() {
        let rules = r#"
            [[rule]]
            id = "tip-too-high"
            when = "has(receipt.tip)"
            expr = "decimal(receipt.tip) <= decimal(receipt.total) * decimal('0.5')"
            message = "tip ${receipt.tip} is more than half of ${receipt.total}"
            pointer = "/tip"

            [[rule]]
            id = "seller-tax-id"
            code = "invalid-tax-id"
            expr = "tax_id_valid(receipt.seller)"
            message = "${tax_id_problem(receipt.seller)}"
            pointer = "/seller"

            [[rule]]
            id = "issued-in-future"
            expr = "minutes_between(receipt.issued_at, submitted_at) >= -5"
            message = "issued after the submission"
            pointer = "/issued_at"

            [[rule]]
            id = "currency-scale"
            expr = "decimal(receipt.total).scale() <= currency_minor_units(receipt.currency)"
            message = "too many decimals"
            pointer = "/total"
        "#;
        let found = reasons(
            rules,
            serde_json::json!({"total": "10.005", "seller": "DE136695976", "issued_at": "2026-11-14T10:03:00+01:00", "currency": "EUR"}),
        );
        let codes: Vec<&str> = found.iter().map(|(_, c, _)| c.as_str()).collect();
        assert_eq!(codes, ["currency-scale"]);
        let found = reasons(
            rules,
            serde_json::json!({"total": "10", "tip": "6", "seller": "DE1", "issued_at": "2026-11-14T10:06:00+01:00", "currency": "XXX"}),
        );
        let codes: Vec<&str> = found.iter().map(|(_, c, _)| c.as_str()).collect();
        assert_eq!(
            codes,
            [
                "tip-too-high",
                "invalid-tax-id",
                "issued-in-future",
                "currency-scale"
            ]
        );
        assert!(
            found[3].2.starts_with("could not be checked"),
            "{:?}",
            found[3]
        );
        assert_eq!(found[0].2, "tip 6 is more than half of 10");
    }

    #[test]
    fn compile_errors_name_their_line() {
        let rules = "[[rule]]\nid = \"a\"\nexpr = \"1 +\"\nmessage = \"m\"\npointer = \"/a\"\n\n[[rule]]\nid = \"a\"\nexpr = \"true\"\nmessage = \"${\"\npointer = \"/b/{index}\"\n";
        let errors = compile(rules).expect_err("broken");
        let lines: Vec<Option<usize>> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [Some(3), Some(8), Some(10), Some(11)], "{errors:?}");
    }
}
