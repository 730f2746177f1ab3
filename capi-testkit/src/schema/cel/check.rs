//! cel-go's type check of a rule, as kube-apiserver runs it when a CRD is written: `self` (and
//! `oldSelf`) get the type upstream's `SchemaDeclType` derives from the rule's schema node, and
//! every operator, function, field selection, index and comprehension of the rule is checked
//! against it. An ill-typed rule refuses the CRD, worded as cel-go words it
//! (`ERROR: <input>:1:15: found no matching overload for '_+_' applied to '(int, string)'`), and
//! so does a rule that does not type to `bool` (`cel expression must evaluate to a bool`) or a
//! `messageExpression` that does not type to `string`.
//!
//! What the schema gives (upstream's `SchemaDeclType`): `integer` is `int`, `number` is `double`,
//! `boolean` is `bool`, `string` is `string` but with format `byte` (`bytes`), `duration`
//! (`google.protobuf.Duration`), `date` and `date-time` (`google.protobuf.Timestamp`); an array
//! is a `list` of its items; an object with `additionalProperties` a `map(string, V)`; an object
//! with `properties` a message type of the declared fields, named as upstream names it
//! (`selfType<n>.spec.template`, the `<n>` changing with each CRD write, as upstream's does). At
//! the root of a resource (and of an embedded resource) `apiVersion` and `kind` are strings and
//! `metadata` has `name` and `generateName`.
//!
//! The check never refuses a rule that a real kube-apiserver accepts: where this module is not
//! certain, the type is `dyn`, which every operation accepts (and which cel-go checks at run
//! time). So: `x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields`, schemas
//! without a `type` and objects without `properties` are `dyn`; a rule on a node that has an
//! untyped schema below it sees `self` as `dyn`; optionals are `dyn`; objects that went through a
//! list or map literal accept any field; the field tested by `has()` is not checked; a function
//! this module has no signature for returns `dyn`. A rule that types to `dyn` is not refused.
//!
//! Signatures live in `check_signatures.rs`. A library function added to the CEL environment must be
//! added there too (with every overload upstream declares): a function missing from the table
//! is unchecked, but a function with only some of its overloads listed refuses the others.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::LazyLock;

use cel::Program;
use cel::common::ast::{EntryExpr, Expr, IdedEntryExpr, IdedExpr, LiteralValue, operators};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};

use super::escape;

#[path = "check_signatures.rs"]
mod signatures;
use signatures::{ORDERED, SIGNATURES};

/// The type an expression has to the checker.
#[derive(Clone, Debug)]
enum Ty<'a> {
    /// Unknown until run time; accepted everywhere.
    Dyn,
    /// The type of an expression already reported; accepted everywhere, so that one mistake is
    /// reported once.
    Error,
    Null,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Timestamp,
    Duration,
    List(Box<Ty<'a>>),
    Map(Box<Ty<'a>>, Box<Ty<'a>>),
    /// An object with declared `properties`.
    Object(Obj<'a>),
    /// The `metadata` of a resource, named as its type is named.
    Meta(Arc<str>),
    /// A type value: `type(x)`, `int`.
    Type(Box<Ty<'a>>),
    /// A library's opaque type: `net.IP`, `kubernetes.Quantity`, ...
    Opaque(Arc<str>),
}

/// An object type of the schema.
#[derive(Clone, Debug)]
struct Obj<'a> {
    schema: &'a JSONSchemaProps,
    /// At the root of a resource: `apiVersion`, `kind` and `metadata` are there.
    resource: bool,
    /// The message type's name, as upstream's `MaybeAssignTypeName` gives it.
    name: Arc<str>,
    /// Whether a field the schema does not declare is an error (not for objects that went through
    /// a literal: see the module doc).
    strict: bool,
}

impl Ty<'_> {
    fn is_dyn(&self) -> bool {
        matches!(self, Ty::Dyn | Ty::Error)
    }

    /// Whether `null` may stand for a value of this type (cel-go's `isLegacyNullable`).
    fn nullable(&self) -> bool {
        matches!(
            self,
            Ty::Object(_) | Ty::Meta(_) | Ty::Timestamp | Ty::Duration | Ty::Opaque(_) | Ty::Null
        )
    }

    /// Whether both are the same type, for picking an overload's result.
    fn same(&self, other: &Ty<'_>) -> bool {
        self.to_string() == other.to_string()
    }
}

impl std::fmt::Display for Ty<'_> {
    /// cel-go's `FormatCELType`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ty::Dyn => f.write_str("dyn"),
            Ty::Error => f.write_str("*error*"),
            Ty::Null => f.write_str("null_type"),
            Ty::Bool => f.write_str("bool"),
            Ty::Int => f.write_str("int"),
            Ty::Uint => f.write_str("uint"),
            Ty::Double => f.write_str("double"),
            Ty::String => f.write_str("string"),
            Ty::Bytes => f.write_str("bytes"),
            Ty::Timestamp => f.write_str("google.protobuf.Timestamp"),
            Ty::Duration => f.write_str("google.protobuf.Duration"),
            Ty::List(e) => write!(f, "list({e})"),
            Ty::Map(k, v) => write!(f, "map({k}, {v})"),
            Ty::Object(o) => f.write_str(&o.name),
            Ty::Meta(n) => f.write_str(n),
            Ty::Type(t) => write!(f, "type({t})"),
            Ty::Opaque(n) => f.write_str(n),
        }
    }
}

/// Whether a value of `b` may be used where `a` is (either way: cel-go's check is symmetric for
/// the types this module builds).
fn assignable(a: &Ty<'_>, b: &Ty<'_>) -> bool {
    match (a, b) {
        _ if a.is_dyn() || b.is_dyn() => true,
        (Ty::Null, o) | (o, Ty::Null) => o.nullable(),
        (Ty::Object(_) | Ty::Meta(_), Ty::Object(_) | Ty::Meta(_) | Ty::Map(..))
        | (Ty::Map(..), Ty::Object(_) | Ty::Meta(_)) => true,
        (Ty::List(x), Ty::List(y)) => assignable(x, y),
        (Ty::Map(k1, v1), Ty::Map(k2, v2)) => assignable(k1, k2) && assignable(v1, v2),
        (Ty::Type(_), Ty::Type(_)) => true,
        (Ty::Opaque(x), Ty::Opaque(y)) => x == y,
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

/// The less specific of two assignable types (cel-go's `mostGeneral`).
fn most_general<'a>(a: &Ty<'a>, b: &Ty<'a>) -> Ty<'a> {
    match (a, b) {
        (Ty::Dyn | Ty::Error, _) | (_, Ty::Dyn | Ty::Error) => Ty::Dyn,
        (Ty::Null, o) | (o, Ty::Null) => o.clone(),
        (Ty::List(x), Ty::List(y)) => Ty::List(Box::new(most_general(x, y))),
        (Ty::Map(k1, v1), Ty::Map(k2, v2)) => Ty::Map(
            Box::new(most_general(k1, k2)),
            Box::new(most_general(v1, v2)),
        ),
        _ => a.clone(),
    }
}

/// An object that went through a literal: any field may be selected from it.
fn loosen(t: Ty<'_>) -> Ty<'_> {
    match t {
        Ty::Object(o) => Ty::Object(Obj { strict: false, ..o }),
        Ty::List(e) => Ty::List(Box::new(loosen(*e))),
        Ty::Map(k, v) => Ty::Map(k, Box::new(loosen(*v))),
        other => other,
    }
}

/// The type of a value of `schema` (upstream's `SchemaDeclType`), named `name` if it is an object.
fn decl<'a>(schema: &'a JSONSchemaProps, resource: bool, name: &str) -> Ty<'a> {
    if schema.x_kubernetes_int_or_string == Some(true)
        || schema.x_kubernetes_preserve_unknown_fields == Some(true)
    {
        return Ty::Dyn;
    }
    let resource = resource || schema.x_kubernetes_embedded_resource == Some(true);
    match schema.type_.as_deref() {
        Some("array") => match &schema.items {
            Some(JSONSchemaPropsOrArray::Schema(i)) => {
                Ty::List(Box::new(decl(i, false, &format!("{name}.@idx"))))
            }
            _ => Ty::Dyn,
        },
        Some("object") => {
            if let Some(JSONSchemaPropsOrBool::Schema(values)) = &schema.additional_properties {
                return Ty::Map(
                    Box::new(Ty::String),
                    Box::new(decl(values, false, &format!("{name}.@elem"))),
                );
            }
            if schema.properties.is_none() {
                return Ty::Dyn;
            }
            Ty::Object(Obj {
                schema,
                resource,
                name: Arc::from(name),
                strict: true,
            })
        }
        Some("string") => match schema.format.as_deref() {
            Some("byte") => Ty::Bytes,
            Some("duration") => Ty::Duration,
            Some("date" | "date-time") => Ty::Timestamp,
            _ => Ty::String,
        },
        Some("boolean") => Ty::Bool,
        Some("number") => Ty::Double,
        Some("integer") => Ty::Int,
        _ => Ty::Dyn,
    }
}

/// Whether upstream's `SchemaDeclType` gives `schema` a type: not if it, or a schema below it, has
/// no `type` (and is not `x-kubernetes-int-or-string`). Rules on such a node see `self` as `dyn`.
fn declared(schema: &JSONSchemaProps) -> bool {
    if schema.x_kubernetes_int_or_string == Some(true) {
        return true;
    }
    match schema.type_.as_deref() {
        None => false,
        Some("array") => match &schema.items {
            Some(JSONSchemaPropsOrArray::Schema(i)) => declared(i),
            _ => false,
        },
        Some("object") => {
            if let Some(JSONSchemaPropsOrBool::Schema(a)) = &schema.additional_properties {
                return declared(a);
            }
            schema.properties.iter().flatten().all(|(_, p)| declared(p))
        }
        Some(_) => true,
    }
}

/// A type in a signature.
#[derive(Clone, Debug, PartialEq)]
enum Sig {
    /// A type parameter, `A` to `Z`.
    Param(u8),
    Dyn,
    Null,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Timestamp,
    Duration,
    List(Box<Sig>),
    Map(Box<Sig>, Box<Sig>),
    Type(Box<Sig>),
    Opaque(Arc<str>),
}

/// One overload: `receiver` is set for a member overload (`x.f(...)`).
#[derive(Debug)]
struct Overload {
    receiver: Option<Sig>,
    params: Vec<Sig>,
    result: Sig,
}

/// Parses one type of a signature from the front of `s`.
fn parse_sig(s: &str) -> Option<(Sig, &str)> {
    let s = s.trim_start();
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    let (word, mut rest) = s.split_at(end);
    let mut args = Vec::new();
    if let Some(r) = rest.strip_prefix('(') {
        rest = r;
        loop {
            let (a, r) = parse_sig(rest)?;
            args.push(a);
            let r = r.trim_start();
            if let Some(r) = r.strip_prefix(',') {
                rest = r;
            } else {
                rest = r.strip_prefix(')')?;
                break;
            }
        }
    }
    let mut args = args.into_iter();
    let mut next = || args.next().map(Box::new);
    let sig = match word {
        "dyn" => Sig::Dyn,
        "null" => Sig::Null,
        "bool" => Sig::Bool,
        "int" => Sig::Int,
        "uint" => Sig::Uint,
        "double" => Sig::Double,
        "string" => Sig::String,
        "bytes" => Sig::Bytes,
        "timestamp" => Sig::Timestamp,
        "duration" => Sig::Duration,
        "optional" => Sig::Dyn,
        "list" => Sig::List(next()?),
        "map" => Sig::Map(next()?, next()?),
        "type" => Sig::Type(next()?),
        w if w.len() == 1 && w.as_bytes()[0].is_ascii_uppercase() => {
            Sig::Param(w.as_bytes()[0] - b'A')
        }
        w if w.contains('.') => Sig::Opaque(Arc::from(w)),
        _ => return None,
    };
    Some((sig, rest))
}

/// Parses `[<receiver>.]name(params) -> result`.
fn parse_overload(line: &str) -> Option<(String, Overload)> {
    let (receiver, rest) = match line.strip_prefix('<') {
        Some(r) => {
            let (t, rest) = parse_sig(r)?;
            (Some(t), rest.strip_prefix(">.")?)
        }
        None => (None, line),
    };
    let open = rest.find('(')?;
    let name = rest[..open].to_owned();
    let mut params = Vec::new();
    let mut r = &rest[open + 1..];
    if let Some(after) = r.trim_start().strip_prefix(')') {
        r = after;
    } else {
        loop {
            let (p, after) = parse_sig(r)?;
            params.push(p);
            let after = after.trim_start();
            if let Some(a) = after.strip_prefix(',') {
                r = a;
            } else {
                r = after.strip_prefix(')')?;
                break;
            }
        }
    }
    let (result, tail) = parse_sig(r.trim_start().strip_prefix("->")?)?;
    if !tail.trim().is_empty() {
        return None;
    }
    Some((
        name,
        Overload {
            receiver,
            params,
            result,
        },
    ))
}

/// The overloads of each function, by name.
type Table = HashMap<String, Vec<Overload>>;

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let mut lines: Vec<String> = SIGNATURES.iter().map(|s| (*s).to_owned()).collect();
    for op in ["_<_", "_<=_", "_>_", "_>=_"] {
        for t in ORDERED {
            lines.push(format!("{op}({t}, {t}) -> bool"));
        }
        for (a, b) in [
            ("int", "uint"),
            ("int", "double"),
            ("uint", "int"),
            ("uint", "double"),
            ("double", "int"),
            ("double", "uint"),
        ] {
            lines.push(format!("{op}({a}, {b}) -> bool"));
        }
    }
    for name in super::format::NAMES {
        lines.push(format!("format.{name}() -> kubernetes.NamedFormat"));
    }
    let mut table = Table::new();
    for line in &lines {
        match parse_overload(line) {
            Some((name, o)) => table.entry(name).or_default().push(o),
            None => tracing::error!(signature = %line, "a CEL signature could not be parsed"),
        }
    }
    table
});

/// Type parameter bindings of one overload being matched.
type Bindings<'a> = [Option<Ty<'a>>; 26];

/// Matches `arg` against `param`, binding type parameters.
fn unify<'a>(b: &mut Bindings<'a>, param: &Sig, arg: &Ty<'a>) -> bool {
    match param {
        Sig::Dyn => true,
        Sig::Param(i) => {
            let slot = &mut b[usize::from(*i)];
            let bound = match slot.as_ref() {
                None => arg.clone(),
                Some(prev) if assignable(prev, arg) => most_general(prev, arg),
                Some(_) => return false,
            };
            *slot = Some(bound);
            true
        }
        _ if arg.is_dyn() => {
            bind_dyn(b, param);
            true
        }
        Sig::List(p) => match arg {
            Ty::List(a) => unify(b, p, a),
            _ => false,
        },
        Sig::Map(pk, pv) => match arg {
            Ty::Map(ak, av) => unify(b, pk, ak) && unify(b, pv, av),
            _ => false,
        },
        Sig::Type(_) => matches!(arg, Ty::Type(_)),
        Sig::Opaque(n) => match arg {
            Ty::Opaque(a) => a == n,
            Ty::Null => true,
            _ => false,
        },
        Sig::Null => matches!(arg, Ty::Null),
        Sig::Timestamp => matches!(arg, Ty::Timestamp | Ty::Null),
        Sig::Duration => matches!(arg, Ty::Duration | Ty::Null),
        Sig::Bool => matches!(arg, Ty::Bool),
        Sig::Int => matches!(arg, Ty::Int),
        Sig::Uint => matches!(arg, Ty::Uint),
        Sig::Double => matches!(arg, Ty::Double),
        Sig::String => matches!(arg, Ty::String),
        Sig::Bytes => matches!(arg, Ty::Bytes),
    }
}

/// A `dyn` argument for `param`: its unbound parameters become `dyn`.
fn bind_dyn(b: &mut Bindings<'_>, param: &Sig) {
    match param {
        Sig::Param(i) => {
            let slot = &mut b[usize::from(*i)];
            *slot = Some(match slot.take() {
                None => Ty::Dyn,
                Some(t) => most_general(&t, &Ty::Dyn),
            });
        }
        Sig::List(p) | Sig::Type(p) => bind_dyn(b, p),
        Sig::Map(k, v) => {
            bind_dyn(b, k);
            bind_dyn(b, v);
        }
        _ => {}
    }
}

/// `sig` with its parameters replaced by their bindings (`dyn` if unbound).
fn substitute<'a>(b: &Bindings<'a>, sig: &Sig) -> Ty<'a> {
    match sig {
        Sig::Param(i) => b[usize::from(*i)].clone().unwrap_or(Ty::Dyn),
        Sig::Dyn => Ty::Dyn,
        Sig::Null => Ty::Null,
        Sig::Bool => Ty::Bool,
        Sig::Int => Ty::Int,
        Sig::Uint => Ty::Uint,
        Sig::Double => Ty::Double,
        Sig::String => Ty::String,
        Sig::Bytes => Ty::Bytes,
        Sig::Timestamp => Ty::Timestamp,
        Sig::Duration => Ty::Duration,
        Sig::List(e) => Ty::List(Box::new(substitute(b, e))),
        Sig::Map(k, v) => Ty::Map(Box::new(substitute(b, k)), Box::new(substitute(b, v))),
        Sig::Type(t) => Ty::Type(Box::new(substitute(b, t))),
        Sig::Opaque(n) => Ty::Opaque(Arc::clone(n)),
    }
}

/// The type a type name denotes as an identifier (`int` is a `type(int)`).
fn type_ident(name: &str) -> Option<Ty<'static>> {
    let t = match name {
        "int" => Ty::Int,
        "uint" => Ty::Uint,
        "double" => Ty::Double,
        "bool" => Ty::Bool,
        "string" => Ty::String,
        "bytes" => Ty::Bytes,
        "null_type" => Ty::Null,
        "list" => Ty::List(Box::new(Ty::Dyn)),
        "map" => Ty::Map(Box::new(Ty::Dyn), Box::new(Ty::Dyn)),
        "type" | "dyn" => Ty::Dyn,
        _ => return None,
    };
    Some(Ty::Type(Box::new(t)))
}

/// Macros that bind variables, by name: when one is left a call (an arity or form the parser does
/// not expand), its arguments are not checked.
const UNEXPANDED_MACROS: &[&str] = &[
    "all",
    "exists",
    "exists_one",
    "existsOne",
    "map",
    "filter",
    "transformList",
    "transformMap",
    "transformMapEntry",
    "optMap",
    "optFlatMap",
    "sortBy",
    "bind",
    "block",
];

/// The checker's state over one expression.
struct Checker<'a, 'p> {
    program: &'p Program,
    table: &'static Table,
    /// `(offset, message)` of each error.
    errors: Vec<(u32, String)>,
    scope: Vec<(&'p str, Ty<'a>)>,
}

impl<'a, 'p> Checker<'a, 'p> {
    fn report(&mut self, id: u64, msg: String) {
        let offset = self
            .program
            .source_info()
            .offset_for(id)
            .map_or(0, |(start, _)| start);
        self.errors.push((offset, msg));
    }

    fn lookup(&self, name: &str) -> Option<Ty<'a>> {
        self.scope
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.clone())
    }

    /// Whether `e` names a variable in scope (then `e.f(...)` is a member call on it).
    fn is_variable(&self, e: &IdedExpr) -> bool {
        match qualified_name(&e.expr) {
            Some(segments) => segments
                .first()
                .is_some_and(|root| self.lookup(root).is_some()),
            None => true,
        }
    }

    /// The type of field `field` of a value of `of`.
    fn select(&mut self, of: &Ty<'a>, field: &str, id: u64, test: bool) -> Ty<'a> {
        match of {
            Ty::Object(o) => {
                if o.resource {
                    match field {
                        "apiVersion" | "kind" => return Ty::String,
                        "metadata" => return Ty::Meta(Arc::from(format!("{}.metadata", o.name))),
                        _ => {}
                    }
                }
                let child = o.schema.properties.iter().flatten().find(|(name, _)| {
                    name.as_str() == field || escape(name).as_deref() == Some(field)
                });
                match child {
                    Some((_, s)) => decl(s, false, &format!("{}.{field}", o.name)),
                    None if o.strict && !test => {
                        self.report(id, format!("undefined field '{field}'"));
                        Ty::Error
                    }
                    None => Ty::Dyn,
                }
            }
            Ty::Meta(_) => match field {
                "name" | "generateName" => Ty::String,
                _ => Ty::Dyn,
            },
            Ty::Map(_, v) => (**v).clone(),
            Ty::Dyn | Ty::Error | Ty::Type(_) => Ty::Dyn,
            other => {
                self.report(
                    id,
                    format!("type '{other}' does not support field selection"),
                );
                Ty::Error
            }
        }
    }

    /// The result of a call of `name` on `args` (the receiver first if `member`).
    fn resolve(&mut self, id: u64, name: &str, member: bool, args: &[Ty<'a>]) -> Ty<'a> {
        let Some(overloads) = self.table.get(name) else {
            return Ty::Dyn;
        };
        let mut result: Option<Ty<'a>> = None;
        for o in overloads {
            if o.receiver.is_some() != member || o.params.len() + usize::from(member) != args.len()
            {
                continue;
            }
            let mut b: Bindings<'a> = Default::default();
            let params = o.receiver.iter().chain(o.params.iter());
            if params.zip(args).all(|(p, a)| unify(&mut b, p, a)) {
                let r = substitute(&b, &o.result);
                result = Some(match result {
                    None => r,
                    Some(prev) if prev.is_dyn() || !prev.same(&r) => Ty::Dyn,
                    Some(prev) => prev,
                });
            }
        }
        match result {
            Some(r) => r,
            None => {
                let shown: Vec<String> = args.iter().map(ToString::to_string).collect();
                let signature = match shown.split_first() {
                    Some((receiver, rest)) if member => {
                        format!("{receiver}.({})", rest.join(", "))
                    }
                    _ => format!("({})", shown.join(", ")),
                };
                self.report(
                    id,
                    format!("found no matching overload for '{name}' applied to '{signature}'"),
                );
                Ty::Error
            }
        }
    }

    /// Reports `e` (of type `t`) unless it is a `want`.
    fn expect(&mut self, e: &IdedExpr, t: &Ty<'a>, want: &Ty<'a>) {
        if !assignable(want, t) {
            self.report(e.id, format!("expected type '{want}' but found '{t}'"));
        }
    }

    /// Joins the type of a literal's element into the element type so far (homogeneous
    /// aggregate literals).
    fn join(&mut self, e: &IdedExpr, prev: Option<Ty<'a>>, t: Ty<'a>) -> Option<Ty<'a>> {
        Some(match prev {
            None => t,
            Some(p) if assignable(&p, &t) => most_general(&p, &t),
            Some(p) => {
                self.report(e.id, format!("expected type '{p}' but found '{t}'"));
                Ty::Error
            }
        })
    }

    fn check(&mut self, e: &'p IdedExpr) -> Ty<'a> {
        match &e.expr {
            Expr::Literal(l) => match l {
                LiteralValue::Boolean(_) => Ty::Bool,
                LiteralValue::Bytes(_) => Ty::Bytes,
                LiteralValue::Double(_) => Ty::Double,
                LiteralValue::Int(_) => Ty::Int,
                LiteralValue::Null => Ty::Null,
                LiteralValue::String(_) => Ty::String,
                LiteralValue::UInt(_) => Ty::Uint,
            },
            Expr::Ident(name) => match self.lookup(name) {
                Some(t) => t,
                None => match type_ident(name) {
                    Some(t) => t,
                    None => {
                        self.report(
                            e.id,
                            format!("undeclared reference to '{name}' (in container '')"),
                        );
                        Ty::Error
                    }
                },
            },
            Expr::Select(s) => {
                if !self.is_variable(&s.operand) {
                    // A qualified name (`net.IP`, a type of a library): not checked.
                    return Ty::Dyn;
                }
                let operand = self.check(&s.operand);
                let t = self.select(&operand, &s.field, e.id, s.test);
                if s.test { Ty::Bool } else { t }
            }
            Expr::Call(c) => self.call(e, c),
            Expr::Comprehension(c) => {
                let range = self.check(&c.iter_range);
                let accu = self.check(&c.accu_init);
                let (var, var2) = match &range {
                    Ty::List(el) => match &c.iter_var2 {
                        None => ((**el).clone(), None),
                        Some(_) => (Ty::Int, Some((**el).clone())),
                    },
                    Ty::Map(k, v) => ((**k).clone(), Some((**v).clone())),
                    Ty::Dyn | Ty::Error | Ty::Object(_) | Ty::Meta(_) => (Ty::Dyn, Some(Ty::Dyn)),
                    other => {
                        self.report(
                            c.iter_range.id,
                            format!(
                                "expression of type '{other}' cannot be range of a comprehension (must be list, map, or dynamic)"
                            ),
                        );
                        (Ty::Error, Some(Ty::Error))
                    }
                };
                let depth = self.scope.len();
                self.scope.push((c.accu_var.as_str(), accu.clone()));
                self.scope.push((c.iter_var.as_str(), var));
                if let Some(second) = &c.iter_var2 {
                    self.scope.push((second.as_str(), var2.unwrap_or(Ty::Dyn)));
                }
                let cond = self.check(&c.loop_cond);
                self.expect(&c.loop_cond, &cond, &Ty::Bool);
                let step = self.check(&c.loop_step);
                self.expect(&c.loop_step, &step, &accu);
                self.scope.truncate(depth + 1);
                let result = self.check(&c.result);
                self.scope.truncate(depth);
                result
            }
            Expr::List(l) => {
                let mut el = None;
                for (i, item) in l.elements.iter().enumerate() {
                    let t = self.check(item);
                    let t = if l.optional_indices.contains(&i) {
                        Ty::Dyn
                    } else {
                        loosen(t)
                    };
                    el = self.join(item, el, t);
                }
                Ty::List(Box::new(el.unwrap_or(Ty::Dyn)))
            }
            Expr::Map(m) => {
                let (mut kt, mut vt) = (None, None);
                for entry in &m.entries {
                    match &entry.expr {
                        EntryExpr::MapEntry(me) => {
                            let k = self.check(&me.key);
                            kt = self.join(&me.key, kt, k);
                            let v = self.check(&me.value);
                            let v = if me.optional { Ty::Dyn } else { loosen(v) };
                            vt = self.join(&me.value, vt, v);
                        }
                        EntryExpr::StructField(sf) => {
                            self.check(&sf.value);
                        }
                    }
                }
                Ty::Map(
                    Box::new(kt.unwrap_or(Ty::Dyn)),
                    Box::new(vt.unwrap_or(Ty::Dyn)),
                )
            }
            Expr::Struct(s) => {
                self.entries(&s.entries);
                Ty::Dyn
            }
            Expr::Unspecified => Ty::Dyn,
        }
    }

    fn entries(&mut self, entries: &'p [IdedEntryExpr]) {
        for entry in entries {
            match &entry.expr {
                EntryExpr::MapEntry(me) => {
                    self.check(&me.key);
                    self.check(&me.value);
                }
                EntryExpr::StructField(sf) => {
                    self.check(&sf.value);
                }
            }
        }
    }

    fn call(&mut self, e: &'p IdedExpr, c: &'p cel::common::ast::CallExpr) -> Ty<'a> {
        let name = c.func_name.as_str();
        if name == operators::LOGICAL_AND || name == operators::LOGICAL_OR {
            for a in &c.args {
                let t = self.check(a);
                self.expect(a, &t, &Ty::Bool);
            }
            return Ty::Bool;
        }
        if name == operators::OPT_SELECT || name == operators::OPT_INDEX {
            if let Some(operand) = c.args.first() {
                self.check(operand);
            }
            if name == operators::OPT_INDEX {
                c.args.iter().skip(1).for_each(|a| {
                    self.check(a);
                });
            }
            return Ty::Dyn;
        }
        // `ns.f(x)` where `ns` is no variable: the global function `ns.f`.
        let (qualified, target) = match &c.target {
            Some(t) if !self.is_variable(t) => match qualified_name(&t.expr) {
                Some(segments) => (Some(format!("{}.{name}", segments.join("."))), None),
                None => (None, Some(t)),
            },
            Some(t) => (None, Some(t)),
            None => (None, None),
        };
        // A macro the parser left unexpanded (two-variable comprehensions, `optMap`, ...): its
        // arguments bind variables, so they are not checked.
        let last = qualified
            .as_deref()
            .and_then(|q| q.rsplit('.').next())
            .unwrap_or(name);
        if UNEXPANDED_MACROS.contains(&last) {
            if let Some(t) = target {
                self.check(t);
            }
            return Ty::Dyn;
        }
        let mut args = Vec::with_capacity(c.args.len() + 1);
        if let Some(t) = target {
            args.push(self.check(t));
        }
        for a in &c.args {
            args.push(self.check(a));
        }
        if let Some(q) = qualified {
            return self.resolve(e.id, &q, false, &args);
        }
        // Objects are indexed and searched by field name: not checked.
        if (name == operators::INDEX || name == operators::IN)
            && matches!(
                args.get(if name == operators::INDEX { 0 } else { 1 }),
                Some(Ty::Object(_) | Ty::Meta(_))
            )
        {
            return if name == operators::IN {
                Ty::Bool
            } else {
                Ty::Dyn
            };
        }
        self.resolve(e.id, name, target.is_some(), &args)
    }
}

/// The segments of the qualified name `e` spells (`a.b.c`), root first; `None` if it is not a name.
fn qualified_name(e: &Expr) -> Option<Vec<&str>> {
    let mut segments = Vec::new();
    let mut e = e;
    loop {
        match e {
            Expr::Ident(name) => {
                segments.push(name.as_str());
                segments.reverse();
                return Some(segments);
            }
            Expr::Select(s) if !s.test => {
                segments.push(s.field.as_str());
                e = &s.operand.expr;
            }
            _ => return None,
        }
    }
}

/// cel-go's `ToDisplayString` of one error at byte `offset` of `src`:
/// `ERROR: <input>:L:C: msg`, the line, and a caret under the column.
fn display(src: &str, offset: u32, msg: &str) -> String {
    let offset = (offset as usize).min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = src
        .get(line_start..)
        .and_then(|l| l.split('\n').next())
        .unwrap_or_default();
    let column: Vec<char> = src.get(line_start..offset).unwrap_or("").chars().collect();
    let dots: String = column
        .iter()
        .map(|c| if c.len_utf8() > 1 { '\u{FF0E}' } else { '.' })
        .collect();
    format!(
        "ERROR: <input>:{line_no}:{}: {msg}\n | {}\n | {dots}^",
        column.len() + 1,
        line.replace('\t', " ")
    )
}

/// What a checked expression must type to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    /// A rule: `bool`.
    Bool,
    /// A `messageExpression`: `string`.
    String,
}

/// Why an expression was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    /// cel-go's issues, joined as `issues.String()` joins them.
    Issues(String),
    /// The expression is well typed, but not of the [`Expect`]ed type.
    WrongType,
}

/// Where a rule is checked: the schema node it is declared on.
#[derive(Debug, Clone, Copy)]
pub(super) struct Site<'a> {
    /// The schema of the node.
    pub(super) schema: &'a JSONSchemaProps,
    /// At the root of a resource (an embedded resource is detected from the schema).
    pub(super) resource: bool,
    /// Whether `oldSelf` is the node's old value (not when the rule sets `optionalOldSelf`,
    /// where it is an optional).
    pub(super) old_self: bool,
    /// The name of `self`'s type, `selfType<n>` upstream.
    pub(super) type_name: &'a str,
}

/// Type-checks `program` (of source `src`) at `site`.
pub(super) fn check(
    program: &Program,
    src: &str,
    site: Site<'_>,
    expect: Expect,
) -> Result<(), Refusal> {
    let this = if declared(site.schema) {
        decl(site.schema, site.resource, site.type_name)
    } else {
        Ty::Dyn
    };
    let old = if site.old_self { this.clone() } else { Ty::Dyn };
    let mut checker = Checker {
        program,
        table: &TABLE,
        errors: Vec::new(),
        scope: vec![("self", this), ("oldSelf", old)],
    };
    let t = checker.check(program.expression());
    let mut errors = checker.errors;
    if errors.is_empty() {
        let ok = match expect {
            Expect::Bool => matches!(t, Ty::Bool),
            Expect::String => matches!(t, Ty::String),
        };
        return if ok || t.is_dyn() {
            Ok(())
        } else {
            Err(Refusal::WrongType)
        };
    }
    errors.sort_by_key(|(offset, _)| *offset);
    errors.dedup();
    Err(Refusal::Issues(
        errors
            .iter()
            .map(|(offset, msg)| display(src, *offset, msg))
            .collect::<Vec<_>>()
            .join("\n"),
    ))
}

/// The name upstream gives `self`'s type, changing with each CRD write
/// (`generateUniqueSelfTypeName`).
pub(super) fn self_type_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("selfType{nanos}")
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
