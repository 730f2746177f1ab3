//! The suite's results: a table for people, JSON and JUnit XML for machines.

use std::time::Duration;

use serde::Serialize;

use super::static_checks::{Finding, Severity};

/// The result of one scenario or static check group.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// The contract clause it checks.
    pub clause: String,
    /// Whether a failure fails the suite.
    pub required: bool,
    /// Passed?
    pub passed: bool,
    /// What went wrong, if anything.
    pub message: Option<String>,
    /// How long it took.
    #[serde(serialize_with = "as_secs")]
    pub duration: Duration,
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Everything the suite found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Static findings (layer 1).
    pub findings: Vec<FindingReport>,
    /// Scenario results (layer 2).
    pub scenarios: Vec<ScenarioResult>,
    /// Total wall time.
    #[serde(serialize_with = "as_secs")]
    pub duration: Duration,
}

/// A static finding, serializable.
#[derive(Debug, Clone, Serialize)]
pub struct FindingReport {
    /// Contract clause.
    pub clause: String,
    /// What was checked.
    pub subject: String,
    /// The problem.
    pub message: String,
    /// `error` or `warning`.
    pub severity: &'static str,
}

impl From<&Finding> for FindingReport {
    fn from(f: &Finding) -> Self {
        Self {
            clause: f.clause.to_owned(),
            subject: f.subject.clone(),
            message: f.message.clone(),
            severity: if f.severity == Severity::Error {
                "error"
            } else {
                "warning"
            },
        }
    }
}

impl Report {
    /// Whether every required scenario passed and no static error was found.
    pub fn passed(&self) -> bool {
        self.findings.iter().all(|f| f.severity != "error")
            && self.scenarios.iter().all(|s| s.passed || !s.required)
    }

    /// The failed required scenarios' names.
    pub fn failures(&self) -> Vec<&str> {
        self.scenarios
            .iter()
            .filter(|s| s.required && !s.passed)
            .map(|s| s.name.as_str())
            .collect()
    }

    /// A table for a terminal.
    pub fn table(&self) -> String {
        let mut t = comfy_table::Table::new();
        t.set_header(["scenario", "result", "time", "clause / problem"]);
        for f in &self.findings {
            t.add_row([
                format!("static: {}", f.clause),
                f.severity.to_uppercase(),
                String::new(),
                format!("{}: {}", f.subject, f.message),
            ]);
        }
        for s in &self.scenarios {
            let result = match (s.passed, s.required) {
                (true, _) => "PASS",
                (false, true) => "FAIL",
                (false, false) => "WARN",
            };
            let detail = match &s.message {
                Some(m) => format!("{}\n  → {m}", s.clause),
                None => s.clause.clone(),
            };
            t.add_row([
                s.name.clone(),
                result.to_owned(),
                format!("{:.1}s", s.duration.as_secs_f64()),
                detail,
            ]);
        }
        let passed = self.scenarios.iter().filter(|s| s.passed).count();
        format!(
            "{t}\n{passed}/{} scenarios passed, {} static errors, in {:.1}s: {}\n",
            self.scenarios.len(),
            self.findings
                .iter()
                .filter(|f| f.severity == "error")
                .count(),
            self.duration.as_secs_f64(),
            if self.passed() {
                "CONFORMANT"
            } else {
                "NOT CONFORMANT"
            }
        )
    }

    /// JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// JUnit XML, one test case per scenario and per static finding group.
    pub fn junit(&self) -> Result<String, quick_junit::SerializeError> {
        use quick_junit::{NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestSuite};
        let mut report = JReport::new("capi-conformance");
        let mut suite = TestSuite::new("contract-scenarios");
        for s in &self.scenarios {
            let status = if s.passed {
                TestCaseStatus::success()
            } else {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                st.set_message(s.message.clone().unwrap_or_default());
                st.set_type(s.clause.clone());
                st
            };
            let mut case = TestCase::new(s.name.clone(), status);
            case.set_time(s.duration);
            suite.add_test_case(case);
        }
        let mut statics = TestSuite::new("static-checks");
        for f in self.findings.iter().filter(|f| f.severity == "error") {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_message(format!("{}: {}", f.subject, f.message));
            statics.add_test_case(TestCase::new(f.clause.clone(), st));
        }
        report.add_test_suite(statics);
        report.add_test_suite(suite);
        report.to_string()
    }
}
