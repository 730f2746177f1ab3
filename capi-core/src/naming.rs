//! CRD names as CAPI computes them: `flect.Pluralize(lowercase(kind)) + "." + group`
//! (`util/contract.CalculateCRDName`). Core fetches a referenced kind's CRD by this name, without
//! discovery, so a provider whose CRD is named otherwise cannot be resolved.
//!
//! [`pluralize`] is a port of gobuffalo/flect's English pluralization, rule for rule and in
//! flect's order, so that unusual kind names (`...Proxy`, `...Index`, `...Alias`) get the same
//! plural as in Go.
//!
//! ```
//! use capi_core::naming::{crd_name, pluralize};
//! assert_eq!(crd_name("infrastructure.cluster.x-k8s.io", "AWSMachine"), "awsmachines.infrastructure.cluster.x-k8s.io");
//! assert_eq!(pluralize("proxy"), "proxies");
//! assert_eq!(pluralize("vsphereclusteridentity"), "vsphereclusteridentities");
//! ```

/// Words with their own plural (flect's `singleToPlural`).
const IRREGULAR: &[(&str, &str)] = &[
    ("matrix", "matrices"),
    ("vertix", "vertices"),
    ("index", "indices"),
    ("mouse", "mice"),
    ("louse", "lice"),
    ("ress", "resses"),
    ("ox", "oxen"),
    ("quiz", "quizzes"),
    ("series", "series"),
    ("octopus", "octopi"),
    ("equipment", "equipment"),
    ("information", "information"),
    ("rice", "rice"),
    ("money", "money"),
    ("species", "species"),
    ("fish", "fish"),
    ("sheep", "sheep"),
    ("jeans", "jeans"),
    ("police", "police"),
    ("dear", "dear"),
    ("goose", "geese"),
    ("tooth", "teeth"),
    ("foot", "feet"),
    ("bus", "buses"),
    ("fez", "fezzes"),
    ("piano", "pianos"),
    ("halo", "halos"),
    ("photo", "photos"),
    ("aircraft", "aircraft"),
    ("alumna", "alumnae"),
    ("alumnus", "alumni"),
    ("analysis", "analyses"),
    ("antenna", "antennas"),
    ("antithesis", "antitheses"),
    ("apex", "apexes"),
    ("appendix", "appendices"),
    ("axis", "axes"),
    ("bacillus", "bacilli"),
    ("bacterium", "bacteria"),
    ("basis", "bases"),
    ("beau", "beaus"),
    ("bison", "bison"),
    ("bureau", "bureaus"),
    ("château", "châteaux"),
    ("codex", "codices"),
    ("concerto", "concertos"),
    ("corpus", "corpora"),
    ("crisis", "crises"),
    ("curriculum", "curriculums"),
    ("deer", "deer"),
    ("diagnosis", "diagnoses"),
    ("die", "dice"),
    ("dwarf", "dwarves"),
    ("ellipsis", "ellipses"),
    ("erratum", "errata"),
    ("faux pas", "faux pas"),
    ("focus", "foci"),
    ("formula", "formulas"),
    ("fungus", "fungi"),
    ("genus", "genera"),
    ("graffito", "graffiti"),
    ("grouse", "grouse"),
    ("half", "halves"),
    ("hoof", "hooves"),
    ("hypothesis", "hypotheses"),
    ("larva", "larvae"),
    ("libretto", "librettos"),
    ("loaf", "loaves"),
    ("locus", "loci"),
    ("minutia", "minutiae"),
    ("moose", "moose"),
    ("nebula", "nebulae"),
    ("nucleus", "nuclei"),
    ("oasis", "oases"),
    ("offspring", "offspring"),
    ("opus", "opera"),
    ("parenthesis", "parentheses"),
    ("phenomenon", "phenomena"),
    ("phylum", "phyla"),
    ("prognosis", "prognoses"),
    ("radius", "radiuses"),
    ("referendum", "referendums"),
    ("salmon", "salmon"),
    ("shrimp", "shrimp"),
    ("stimulus", "stimuli"),
    ("stratum", "strata"),
    ("swine", "swine"),
    ("syllabus", "syllabi"),
    ("symposium", "symposiums"),
    ("synopsis", "synopses"),
    ("tableau", "tableaus"),
    ("thesis", "theses"),
    ("thief", "thieves"),
    ("trout", "trout"),
    ("tuna", "tuna"),
    ("vertebra", "vertebrae"),
    ("vita", "vitae"),
    ("vortex", "vortices"),
    ("wharf", "wharves"),
    ("wife", "wives"),
    ("wolf", "wolves"),
    ("datum", "data"),
    ("testis", "testes"),
    ("alias", "aliases"),
    ("house", "houses"),
    ("shoe", "shoes"),
    ("news", "news"),
    ("ovum", "ova"),
];

/// Suffix rules in flect's order (`AddPlural(suffix, replacement)`); each also makes words
/// already ending in the replacement stay as they are.
const SUFFIXES: &[(&str, &str)] = &[
    ("man", "men"),
    ("tz", "tzes"),
    ("alias", "aliases"),
    ("oasis", "oasis"),
    ("wife", "wives"),
    ("basis", "basis"),
    ("atum", "ata"),
    ("adium", "adia"),
    ("actus", "acti"),
    ("irus", "iri"),
    ("iterion", "iteria"),
    ("dium", "diums"),
    ("ovum", "ova"),
    ("ize", "izes"),
    ("dge", "dges"),
    ("focus", "foci"),
    ("child", "children"),
    ("oaf", "oaves"),
    ("randum", "randa"),
    ("base", "bases"),
    ("atus", "atuses"),
    ("ode", "odes"),
    ("person", "people"),
    ("va", "vae"),
    ("leus", "li"),
    ("ld", "ldren"),
    ("oot", "eet"),
    ("oose", "eese"),
    ("box", "boxes"),
    ("ium", "ia"),
    ("sis", "ses"),
    ("nna", "nnas"),
    ("eses", "esis"),
    ("stis", "stes"),
    ("ex", "ices"),
    ("ula", "ulae"),
    ("isis", "ises"),
    ("ouses", "ouse"),
    ("olves", "olf"),
    ("lf", "lves"),
    ("rf", "rves"),
    ("afe", "aves"),
    ("bfe", "bves"),
    ("cfe", "cves"),
    ("dfe", "dves"),
    ("efe", "eves"),
    ("gfe", "gves"),
    ("hfe", "hves"),
    ("ife", "ives"),
    ("jfe", "jves"),
    ("kfe", "kves"),
    ("lfe", "lves"),
    ("mfe", "mves"),
    ("nfe", "nves"),
    ("ofe", "oves"),
    ("pfe", "pves"),
    ("qfe", "qves"),
    ("rfe", "rves"),
    ("sfe", "sves"),
    ("tfe", "tves"),
    ("ufe", "uves"),
    ("vfe", "vves"),
    ("wfe", "wves"),
    ("xfe", "xves"),
    ("yfe", "yves"),
    ("zfe", "zves"),
    ("hive", "hives"),
    ("quy", "quies"),
    ("by", "bies"),
    ("cy", "cies"),
    ("dy", "dies"),
    ("fy", "fies"),
    ("gy", "gies"),
    ("hy", "hies"),
    ("jy", "jies"),
    ("ky", "kies"),
    ("ly", "lies"),
    ("my", "mies"),
    ("ny", "nies"),
    ("py", "pies"),
    ("qy", "qies"),
    ("ry", "ries"),
    ("sy", "sies"),
    ("ty", "ties"),
    ("vy", "vies"),
    ("wy", "wies"),
    ("xy", "xies"),
    ("zy", "zies"),
    ("x", "xes"),
    ("ch", "ches"),
    ("ss", "sses"),
    ("sh", "shes"),
    ("oe", "oes"),
    ("io", "ios"),
    ("o", "oes"),
];

/// The plural of `word` as flect's `Pluralize` gives it (case of the untouched part kept).
pub fn pluralize(word: &str) -> String {
    if word.is_empty() {
        return String::new();
    }
    let lower = word.to_lowercase();
    // Lowercasing can change byte lengths outside ASCII; then work on the lowercase form.
    let word = if lower.len() == word.len() {
        word
    } else {
        lower.as_str()
    };
    if IRREGULAR.iter().any(|(_, plural)| *plural == lower) {
        return word.to_owned();
    }
    if let Some((_, plural)) = IRREGULAR.iter().find(|(single, _)| *single == lower) {
        return (*plural).to_owned();
    }
    for (suffix, replacement) in SUFFIXES {
        if lower.ends_with(suffix) {
            let stem = word.get(..word.len() - suffix.len()).unwrap_or(word);
            return format!("{stem}{replacement}");
        }
        // The replacement itself is a "keep as is" rule, checked right after its suffix.
        if lower.ends_with(replacement) {
            return word.to_owned();
        }
    }
    if lower.ends_with('s') {
        return word.to_owned();
    }
    format!("{word}s")
}

/// The resource (plural) name of a kind: `pluralize(lowercase(kind))`.
pub fn plural(kind: &str) -> String {
    pluralize(&kind.to_lowercase())
}

/// `<plural>.<group>`, the CRD name CAPI looks a kind up by.
pub fn crd_name(group: &str, kind: &str) -> String {
    format!("{}.{group}", plural(kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn provider_kinds_pluralize_as_in_go() {
        for (kind, expected) in [
            ("AWSMachine", "awsmachines"),
            ("AWSManagedControlPlane", "awsmanagedcontrolplanes"),
            ("DockerMachinePool", "dockermachinepools"),
            ("AzureManagedControlPlane", "azuremanagedcontrolplanes"),
            ("ByoHost", "byohosts"),
            ("Proxy", "proxies"),
            ("VSphereClusterIdentity", "vsphereclusteridentities"),
            ("DevClusterTemplate", "devclustertemplates"),
            ("Cluster", "clusters"),
            ("MachineHealthCheck", "machinehealthchecks"),
            ("GCPMachine", "gcpmachines"),
            ("Metal3DataTemplate", "metal3datatemplates"),
            ("IBMPowerVSImage", "ibmpowervsimages"),
            ("OpenStackCluster", "openstackclusters"),
            ("Index", "indices"),
            ("Alias", "aliases"),
            ("Box", "boxes"),
            ("Gateway", "gateways"),
            ("Status", "statuses"),
            ("Address", "addresses"),
            ("Batch", "batches"),
            ("Policy", "policies"),
        ] {
            assert_eq!(plural(kind), expected, "{kind}");
        }
    }

    #[test]
    fn core_kinds_match_their_crd_names() {
        for crd in crate::crd::core_crds().unwrap() {
            let name = crd.metadata.name.unwrap();
            assert_eq!(crd_name(&crd.spec.group, &crd.spec.names.kind), name);
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_never_shrinks(word in "[a-zA-Zé ]{0,20}") {
            let p = pluralize(&word);
            prop_assert!(p.len() + 8 >= word.len());
            let _ = pluralize(&format!("{word}İx"));
        }
    }
}
