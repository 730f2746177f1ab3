//! Kubernetes' regex library (`k8s.io/apiserver/pkg/cel/library/regex.go`): on a string
//! `find(re)`, `findAll(re)` and `findAll(re, limit)`.
//!
//! Patterns are RE2 syntax, which the `regex` crate implements; a pattern that does not compile
//! fails the rule with upstream's `Illegal regex: ...` (the detail is the `regex` crate's).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use cel::Env;
use cel::common::types::{INT_TYPE, STRING_TYPE};

use super::support::{Args, Ret, fail, int_arg, ret, str_arg};

/// Compiled patterns, as cel-go precompiles constant ones.
static CACHE: LazyLock<Mutex<HashMap<String, Arc<::regex::Regex>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The most patterns kept compiled.
const CACHE_SIZE: usize = 256;

fn compile(function: &str, pattern: &str) -> Result<Arc<::regex::Regex>, cel::ExecutionError> {
    if let Ok(cache) = CACHE.lock()
        && let Some(re) = cache.get(pattern)
    {
        return Ok(Arc::clone(re));
    }
    let re = ::regex::Regex::new(pattern)
        .map(Arc::new)
        .map_err(|e| fail(function, format!("Illegal regex: {e}")))?;
    if let Ok(mut cache) = CACHE.lock() {
        if cache.len() >= CACHE_SIZE {
            cache.clear();
        }
        cache.insert(pattern.to_owned(), Arc::clone(&re));
    }
    Ok(re)
}

/// Registers the library.
pub(super) fn library(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_member_overload(
        "find",
        "string_find_string",
        STRING_TYPE,
        vec![STRING_TYPE],
        find,
    )?;
    env.add_member_overload(
        "findAll",
        "string_find_all_string",
        STRING_TYPE,
        vec![STRING_TYPE],
        find_all,
    )?;
    env.add_member_overload(
        "findAll",
        "string_find_all_string_int",
        STRING_TYPE,
        vec![STRING_TYPE, INT_TYPE],
        find_all,
    )?;
    Ok(())
}

fn string(s: &str) -> cel::Value {
    cel::Value::String(Arc::new(s.to_owned()))
}

fn find<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = str_arg("find", &args, 0)?;
    let re = compile("find", str_arg("find", &args, 1)?)?;
    ret(string(re.find(s).map_or("", |m| m.as_str())))
}

fn find_all<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = str_arg("findAll", &args, 0)?;
    let re = compile("findAll", str_arg("findAll", &args, 1)?)?;
    // Go's `FindAllString(s, n)`: all matches for a negative `n`, at most `n` otherwise.
    let limit = if args.len() > 2 {
        int_arg("findAll", &args, 2)?
    } else {
        -1
    };
    let matches = re.find_iter(s).map(|m| string(m.as_str()));
    let list: Vec<cel::Value> = match usize::try_from(limit) {
        Ok(n) => matches.take(n).collect(),
        Err(_) => matches.collect(),
    };
    ret(cel::Value::List(Arc::new(list)))
}
