//! Tests of the type check: well-typed rules pass, ill-typed ones are refused worded as cel-go
//! words it, real CRDs' rules all pass, and no expression panics the checker.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use proptest::prelude::*;
use serde_json::json;

use super::{Expect, Refusal, Site, check};

fn schema() -> JSONSchemaProps {
    serde_json::from_value(json!({"type": "object", "properties": {
        "replicas": {"type": "integer"},
        "name": {"type": "string"},
        "ratio": {"type": "number"},
        "enabled": {"type": "boolean"},
        "timeout": {"type": "string", "format": "duration"},
        "at": {"type": "string", "format": "date-time"},
        "data": {"type": "string", "format": "byte"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "ports": {"type": "array", "items": {"type": "object", "properties": {
            "port": {"type": "integer"}, "name": {"type": "string"}}}},
        "ios": {"x-kubernetes-int-or-string": true},
        "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        "template": {"type": "object", "properties": {"image": {"type": "string"}}},
        "a-b": {"type": "string"}
    }}))
    .unwrap()
}

fn run(s: &JSONSchemaProps, resource: bool, src: &str, expect: Expect) -> Result<(), Refusal> {
    let program = super::super::compile_expr(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let site = Site {
        schema: s,
        resource,
        old_self: true,
        type_name: "selfType0",
    };
    check(&program, src, site, expect)
}

/// The refusal of `src` as a rule on [`schema`].
fn refusal(src: &str) -> String {
    match run(&schema(), false, src, Expect::Bool) {
        Ok(()) => panic!("{src} was accepted"),
        Err(Refusal::Issues(e)) => e,
        Err(Refusal::WrongType) => "wrong type".to_owned(),
    }
}

#[test]
fn well_typed_rules_are_accepted() {
    let s = schema();
    let rules = [
        "self.replicas > 1",
        "self.replicas + 1 <= 10 && self.replicas % 2 == 0 && -self.replicas < 0",
        "self.name.size() <= 63 && self.name.startsWith('a') && size(self.name) > 0",
        "self.ratio > 0.5 && self.ratio > 0 && self.replicas < 2.5 && 1u < self.replicas",
        "self.enabled",
        "!self.enabled || self.replicas == 0",
        "self.timeout < duration('1h') && self.timeout + duration('1s') > duration('0s')",
        "self.at < timestamp('2030-01-01T00:00:00Z') && self.at.getFullYear() > 2000",
        "self.at - self.at == duration('0s') && self.at + self.timeout > self.at",
        "self.data.size() < 10 && self.data != b'x'",
        "self.tags.all(t, t != '') && self.tags.exists(t, t == 'x') || true",
        "self.tags.exists_one(t, t == 'a')",
        "self.tags.map(t, t.size()).sum() < 100",
        "self.tags.filter(t, t.startsWith('x')).size() == 0",
        "self.tags.map(t, t.startsWith('x'), t + 'y').all(t, t.endsWith('y'))",
        "'a' in self.tags && self.tags + ['x'] != [] && self.tags[0] != ''",
        "self.labels.all(k, k.size() < 10 && self.labels[k] != '')",
        "'app' in self.labels && self.labels.app == 'x' && self.labels['a'] == 'y'",
        "self.ports.all(p, p.port > 0 && p.name != '')",
        "self.ports.map(p, p.name).join(',') != '' && self.ports[0].port == 80",
        "type(self.ios) == int ? self.ios > 0 : self.ios.endsWith('%')",
        "type(self.name) == string && type(self.replicas) != type(self.name)",
        "self.raw.anything == 1 && self.raw.x.y.z != 'q'",
        "has(self.template) && self.template.image.matches('^[a-z]+$')",
        "has(self.template.image) && has(self.labels.x)",
        "self.name == oldSelf.name && self == oldSelf",
        "self.a__dash__b == ''",
        "quantity('1Gi').isLessThan(quantity('2Gi')) && isQuantity(self.name)",
        "quantity(self.name).add(1).sub(quantity('1')).compareTo(quantity('2')) < 0",
        "quantity(self.name).asApproximateFloat() > 0.0 && quantity(self.name).sign() == 1",
        "url(self.name).getHost() != '' && isURL(self.name) && url(self.name).getQuery().size() == 0",
        "ip(self.name).family() == 4 && isIP(self.name) && ip.isCanonical(self.name)",
        "cidr(self.name).containsIP('10.0.0.1') && cidr(self.name).containsIP(ip('10.0.0.1'))",
        "cidr(self.name).ip().isLoopback() && cidr(self.name).masked().prefixLength() > 8",
        "string(ip(self.name)) == self.name && isCIDR(self.name)",
        "semver(self.name).isGreaterThan(semver('1.0.0')) && semver(self.name, true).major() == 1",
        "isSemver(self.name) && isSemver(self.name, true)",
        "!format.dns1123Label().validate(self.name).hasValue()",
        "format.named('uuid').hasValue() && format.named('uuid').value().validate('x').hasValue()",
        "self.name.find('[0-9]+') != '' && self.name.findAll('a').size() > 0",
        "self.name.findAll('a', 2).size() > 0 && self.tags.isSorted()",
        "sets.contains(self.tags, ['a']) && sets.intersects(self.tags, self.tags)",
        "self.name.lowerAscii() == self.name.upperAscii().trim()",
        "self.name.split(',').size() == 2 && self.name.substring(1, 2) == self.name.charAt(0)",
        "self.name.indexOf('a') >= 0 && self.tags.indexOf('a') >= 0",
        "self.name.replace('a', 'b') == '' && strings.quote(self.name) != ''",
        "self.?template.image.orValue('') == '' && self.?name.hasValue()",
        "[1, 2, 3].exists(x, x == self.replicas) && {'a': 1}.a == 1",
        "self.replicas in [1, 2] && [[1], [2]].size() == 2 && [] == []",
        "int(self.ratio) == self.replicas && string(self.replicas) == '3'",
        "double(self.replicas) < self.ratio && uint(self.replicas) > 0u",
        "dyn(self.replicas) == 'x' || true",
        "self.tags.all(t, self.ports.exists(p, p.name == t))",
        "self.labels.exists(k, k == 'x') && self.labels.map(k, self.labels[k]).size() > 0",
        "self.template == oldSelf.template && self.template != null",
        "self.at == null || self.timeout == null || true",
        "[self.template].all(t, t.whatever == 1) && {'a': self}.a.zzz == 1",
        "self.tags.size() == 0 ? true : self.tags[0] == 'x'",
        "matches(self.name, '^a') && self.name.matches('b$')",
        "self.labels.all(k, v, k != v) && self.tags.exists(i, t, i > 0 && t != '')",
        "self.labels.transformMap(k, v, v + 'x').size() > 0 && self.?name.optMap(n, n + 'x').hasValue()",
    ];
    for rule in rules {
        assert_eq!(run(&s, false, rule, Expect::Bool), Ok(()), "{rule}");
    }
}

#[test]
fn the_root_of_a_resource_has_api_version_kind_and_metadata() {
    let root: JSONSchemaProps = serde_json::from_value(json!({"type": "object", "properties": {
        "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": {"x": {"type": "string"}}}
    }}))
    .unwrap();
    for rule in [
        "self.metadata.name.startsWith('a') && self.kind == 'K' && self.apiVersion != ''",
        "self.metadata.generateName == '' && self.spec.x == ''",
        "self.metadata.namespace == '' || true",
    ] {
        assert_eq!(run(&root, true, rule, Expect::Bool), Ok(()), "{rule}");
    }
    assert_eq!(
        run(&root, true, "self.metadata.name + 1 == 2", Expect::Bool),
        Err(Refusal::Issues(
            "ERROR: <input>:1:20: found no matching overload for '_+_' applied to '(string, int)'\n | self.metadata.name + 1 == 2\n | ...................^".to_owned()
        ))
    );
}

#[test]
fn ill_typed_rules_are_refused_worded_as_cel_go() {
    let cases = [
        (
            "self.replicas + 'a' == 'b'",
            "ERROR: <input>:1:15: found no matching overload for '_+_' applied to '(int, string)'\n | self.replicas + 'a' == 'b'\n | ..............^",
        ),
        (
            "self.name.size() > 'x'",
            "ERROR: <input>:1:18: found no matching overload for '_>_' applied to '(int, string)'\n | self.name.size() > 'x'\n | .................^",
        ),
        (
            "self.replica > 1",
            "ERROR: <input>:1:5: undefined field 'replica'\n | self.replica > 1\n | ....^",
        ),
        (
            "self.ports.all(p, p.nam != '')",
            "ERROR: <input>:1:20: undefined field 'nam'\n | self.ports.all(p, p.nam != '')\n | ...................^",
        ),
        (
            "self.name.contains(1)",
            "ERROR: <input>:1:19: found no matching overload for 'contains' applied to 'string.(int)'\n | self.name.contains(1)\n | ..................^",
        ),
        (
            "self.replicas.size() > 0",
            "ERROR: <input>:1:19: found no matching overload for 'size' applied to 'int.()'\n | self.replicas.size() > 0\n | ..................^",
        ),
        (
            "[1, 'a'].size() > 0",
            "ERROR: <input>:1:5: expected type 'int' but found 'string'\n | [1, 'a'].size() > 0\n | ....^",
        ),
        (
            "nope == 1",
            "ERROR: <input>:1:1: undeclared reference to 'nope' (in container '')\n | nope == 1\n | ^",
        ),
        (
            "self.template == 1",
            "ERROR: <input>:1:15: found no matching overload for '_==_' applied to '(selfType0.template, int)'\n | self.template == 1\n | ..............^",
        ),
        (
            "self.ratio == 1",
            "ERROR: <input>:1:12: found no matching overload for '_==_' applied to '(double, int)'\n | self.ratio == 1\n | ...........^",
        ),
        (
            "self.name == null",
            "ERROR: <input>:1:11: found no matching overload for '_==_' applied to '(string, null_type)'\n | self.name == null\n | ..........^",
        ),
        (
            "!self.replicas",
            "ERROR: <input>:1:1: found no matching overload for '!_' applied to '(int)'\n | !self.replicas\n | ^",
        ),
        (
            "self.enabled ? 1 : 'a'",
            "ERROR: <input>:1:14: found no matching overload for '_?_:_' applied to '(bool, int, string)'\n | self.enabled ? 1 : 'a'\n | .............^",
        ),
        (
            "self.replicas.x == 1",
            "ERROR: <input>:1:14: type 'int' does not support field selection\n | self.replicas.x == 1\n | .............^",
        ),
        (
            "self.tags.all(t, t.size())",
            "ERROR: <input>:1:24: expected type 'bool' but found 'int'\n | self.tags.all(t, t.size())\n | .......................^",
        ),
        (
            "self.replicas.all(x, true)",
            "ERROR: <input>:1:5: expression of type 'int' cannot be range of a comprehension (must be list, map, or dynamic)\n | self.replicas.all(x, true)\n | ....^",
        ),
        (
            "self.ports[0].port == 'x' || self.timeout > 1",
            "ERROR: <input>:1:20: found no matching overload for '_==_' applied to '(int, string)'\n | self.ports[0].port == 'x' || self.timeout > 1\n | ...................^\nERROR: <input>:1:43: found no matching overload for '_>_' applied to '(google.protobuf.Duration, int)'\n | self.ports[0].port == 'x' || self.timeout > 1\n | ..........................................^",
        ),
        (
            "self.labels.x.size() == self.tags",
            "ERROR: <input>:1:22: found no matching overload for '_==_' applied to '(int, list(string))'\n | self.labels.x.size() == self.tags\n | .....................^",
        ),
    ];
    for (rule, want) in cases {
        assert_eq!(refusal(rule), want, "{rule}");
    }
}

#[test]
fn rules_must_type_to_bool_and_message_expressions_to_string() {
    let s = schema();
    for rule in [
        "self.replicas",
        "self.name",
        "self.tags.map(t, t)",
        "self.template",
    ] {
        assert_eq!(
            run(&s, false, rule, Expect::Bool),
            Err(Refusal::WrongType),
            "{rule}"
        );
    }
    // `dyn` may be a bool when it runs.
    assert_eq!(run(&s, false, "self.ios", Expect::Bool), Ok(()));
    for me in [
        "'x' + self.name",
        "self.tags.join(', ')",
        "string(self.replicas)",
    ] {
        assert_eq!(run(&s, false, me, Expect::String), Ok(()), "{me}");
    }
    assert_eq!(
        run(&s, false, "self.replicas", Expect::String),
        Err(Refusal::WrongType)
    );
    assert_eq!(
        run(&s, false, "'x' + self.replicas", Expect::String),
        Err(Refusal::Issues(
            "ERROR: <input>:1:5: found no matching overload for '_+_' applied to '(string, int)'\n | 'x' + self.replicas\n | ....^".to_owned()
        ))
    );
}

#[test]
fn an_optional_old_self_is_not_checked() {
    let s = schema();
    let program =
        super::super::compile_expr("oldSelf.hasValue() && oldSelf.value().name == self.name")
            .unwrap();
    let site = Site {
        schema: &s,
        resource: false,
        old_self: false,
        type_name: "selfType0",
    };
    let src = "oldSelf.hasValue() && oldSelf.value().name == self.name";
    assert_eq!(check(&program, src, site, Expect::Bool), Ok(()));
}

/// A rule found in a CRD: its node's schema, whether the node is a resource's root, the rule and
/// its message expression.
type Found = (JSONSchemaProps, bool, String, Option<String>);

/// Every rule of the CRDs under `dir` and below.
fn corpus_rules(dir: &std::path::Path, out: &mut Vec<Found>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            corpus_rules(&path, out);
            continue;
        }
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        if !text.contains("kind: CustomResourceDefinition") {
            continue;
        }
        let crd: CustomResourceDefinition = serde_saphyr::from_str(&text).unwrap();
        for v in crd.spec.versions {
            if let Some(root) = v.schema.and_then(|s| s.open_api_v3_schema) {
                walk(&root, true, out);
            }
        }
    }
}

fn walk(s: &JSONSchemaProps, resource: bool, out: &mut Vec<Found>) {
    for r in s.x_kubernetes_validations.iter().flatten() {
        out.push((
            s.clone(),
            resource,
            r.rule.clone(),
            r.message_expression.clone(),
        ));
    }
    for p in s.properties.iter().flatten().map(|(_, p)| p) {
        walk(p, false, out);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(i)) = &s.items {
        walk(i, false, out);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(a)) = &s.additional_properties {
        walk(a, false, out);
    }
}

#[test]
fn every_rule_of_the_corpus_crds_type_checks() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    if !root.is_dir() {
        println!("skipped: {} is absent", root.display());
        return;
    }
    let mut rules = Vec::new();
    corpus_rules(&root, &mut rules);
    assert!(!rules.is_empty(), "the corpus has CRDs with rules");
    for (s, resource, rule, me) in &rules {
        assert_eq!(run(s, *resource, rule, Expect::Bool), Ok(()), "{rule}");
        if let Some(me) = me {
            assert_eq!(run(s, *resource, me, Expect::String), Ok(()), "{me}");
        }
    }
    println!("{} corpus rules type-check", rules.len());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Random small expressions over the schema's fields never panic the checker.
    #[test]
    fn random_expressions_never_panic_the_checker(tokens in prop::collection::vec(prop::sample::select(vec![
        "self", "oldSelf", ".", "replicas", "name", "tags", "labels", "ports", "ios", "raw",
        "template", "port", "x", "(", ")", "[", "]", "{", "}", ",", ":", "?", "+", "-", "*", "/",
        "%", "==", "!=", "<", ">=", "&&", "||", "!", "in", "1", "2u", "1.5", "'a'", "b'x'",
        "null", "true", "size", "all", "exists", "map", "filter", "exists_one", "has", "t",
        "int", "string", "type", "dyn", "quantity", "ip", "cidr", "format", "optional", ".?",
        "[?", "orValue", "join", "matches", "sum", "isSorted",
    ]), 1..14)) {
        let src = tokens.join(" ");
        let s = schema();
        if let Ok(program) = super::super::compile_expr(&src) {
            for expect in [Expect::Bool, Expect::String] {
                for resource in [false, true] {
                    let site = Site { schema: &s, resource, old_self: resource, type_name: "selfType0" };
                    let _ = check(&program, &src, site, expect);
                }
            }
        }
    }
}
