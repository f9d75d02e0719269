//! Keyset paging in SQL: the `WHERE` part that keeps the rows after a cursor and the
//! `ORDER BY … LIMIT` of a page (see [`crate::domain::page`] for why keyset, not offsets).

use rusqlite::types::Value;

use crate::domain::page::{PageRequest, SortValue};

/// A sort value as a SQL parameter.
pub(super) fn value(v: &SortValue) -> Value {
    match v {
        SortValue::Int(n) => Value::Integer(*n),
        SortValue::Text(t) => Value::Text(t.clone()),
    }
}

/// Read a sort value back from a selected column.
pub(super) fn sort_value(v: Value) -> SortValue {
    match v {
        Value::Integer(n) => SortValue::Int(n),
        Value::Text(t) => SortValue::Text(t),
        Value::Real(r) => SortValue::Text(r.to_string()),
        Value::Null | Value::Blob(_) => SortValue::Text(String::new()),
    }
}

/// `AND`-able condition keeping the rows after `page`'s cursor in the order of `expr` (never
/// NULL: wrap nullable columns in `coalesce`) then `id`, pushing its parameters onto
/// `params`; `1` without a cursor. Plus the `ORDER BY … LIMIT` reading one row more than the
/// page, to tell whether more remain.
pub(super) fn keyset(
    expr: &str,
    id: &str,
    page: &PageRequest,
    params: &mut Vec<Value>,
) -> (String, String) {
    let (cmp, dir) = if page.sort.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    let condition = match &page.after {
        None => "1".to_owned(),
        Some(cursor) => {
            params.push(value(&cursor.value));
            let v = params.len();
            params.push(Value::Integer(cursor.id));
            let i = params.len();
            format!("(({expr}) {cmp} ?{v} OR (({expr}) = ?{v} AND {id} {cmp} ?{i}))")
        }
    };
    params.push(Value::Integer(i64::from(page.limit) + 1));
    let order = format!(
        "ORDER BY ({expr}) {dir}, {id} {dir} LIMIT ?{}",
        params.len()
    );
    (condition, order)
}
