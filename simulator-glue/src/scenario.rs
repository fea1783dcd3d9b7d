//! Scenario files (TOML): who the simulated UEs are to the services, and
//! which agent serves which cell.
//!
//! ```toml
//! # IMSI → the UE identity services registered the UE under.
//! [ues]
//! 1 = "imsi-001010000000001"
//! 2 = "alice"
//!
//! # Identity of IMSIs not listed in [ues] (optional): {imsi} is replaced by
//! # the IMSI, {imsi:015} by the IMSI zero-padded to 15 digits.
//! ue_identity = "imsi-{imsi:015}"
//!
//! # One entry per eNodeB-Cloud: its agent's API socket and the cells of
//! # its eNodeB(s). A relative path is taken from the scenario file's folder;
//! # http://HOST:PORT reaches an agent's Operator API on TCP (listen.operator).
//! [[enbcs]]
//! name = "enbc1"
//! api = "/run/edgemob/enbc1.sock"
//! cells = [1]
//!
//! [[enbcs]]
//! name = "enbc2"
//! api = "/run/edgemob/enbc2.sock"
//! cells = [2]
//!
//! # Optional, for `trace from-pcap`: the X2 address of each eNB end of
//! # every X2 link → its cell. Without it, ns-3's own X2 addressing is
//! # assumed (see the x2pcap module).
//! [x2]
//! "12.0.0.5" = 1
//! "12.0.0.6" = 2
//! ```
//!
//! Every error names the offending field. (Top-level keys such as
//! `ue_identity` must come before the first table in TOML.)

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default)]
    ue_identity: Option<String>,
    #[serde(default)]
    ues: BTreeMap<String, String>,
    #[serde(default)]
    enbcs: Vec<RawEnbc>,
    #[serde(default)]
    x2: BTreeMap<String, u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnbc {
    name: String,
    api: PathBuf,
    cells: Vec<u32>,
}

/// One eNodeB-Cloud of the scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enbc {
    /// Its name (for reports).
    pub name: String,
    /// Its agent's API socket (absolute, or relative to the current directory
    /// if the scenario was parsed from text without a folder).
    pub api: PathBuf,
    /// Cells its eNodeB(s) serve.
    pub cells: Vec<u32>,
}

/// A loaded, validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    path: PathBuf,
    ue_template: Option<String>,
    ues: BTreeMap<u64, String>,
    enbcs: Vec<Enbc>,
    by_cell: HashMap<u32, usize>,
    x2: HashMap<Ipv4Addr, u32>,
}

/// A scenario file problem, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Read {
        /// The scenario file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("scenario {path}: {message}")]
    Parse {
        /// The scenario file.
        path: PathBuf,
        /// The parser's message (it names the key and line).
        message: String,
    },
    /// A field has a value that cannot work.
    #[error("scenario {path}: {field}: {message}")]
    Invalid {
        /// The scenario file.
        path: PathBuf,
        /// The field, e.g. `enbcs[1].cells`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// A lookup the scenario cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// No eNBC of the scenario serves this cell.
    #[error("cell {cell} is served by no eNBC of scenario {path}")]
    UnknownCell {
        /// The cell.
        cell: u32,
        /// The scenario file.
        path: PathBuf,
    },
    /// The IMSI is not in `[ues]` and there is no `ue_identity` template.
    #[error("IMSI {imsi} is not in [ues] of scenario {path}, which has no ue_identity template")]
    UnknownImsi {
        /// The IMSI.
        imsi: u64,
        /// The scenario file.
        path: PathBuf,
    },
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        Scenario::parse(&text, path)
    }

    /// Parses scenario text; `path` names it in errors and anchors relative
    /// socket paths (at its parent folder).
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: path.to_owned(),
            message: e
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        })?;
        let bad = |field: String, message: String| ScenarioError::Invalid {
            path: path.to_owned(),
            field,
            message,
        };
        if let Some(template) = &raw.ue_identity {
            if !template.contains("{imsi") {
                return Err(bad(
                    "ue_identity".into(),
                    format!("template {template:?} has no {{imsi}} placeholder"),
                ));
            }
            render_identity(template, 1).map_err(|m| bad("ue_identity".into(), m))?;
        }
        let mut ues = BTreeMap::new();
        for (key, identity) in &raw.ues {
            let imsi: u64 = key.trim().parse().map_err(|_| {
                bad(
                    format!("ues.{key}"),
                    "the key must be an IMSI (digits)".into(),
                )
            })?;
            if identity.trim().is_empty() {
                return Err(bad(format!("ues.{key}"), "empty UE identity".into()));
            }
            if ues.insert(imsi, identity.clone()).is_some() {
                return Err(bad(
                    format!("ues.{key}"),
                    format!("IMSI {imsi} listed twice"),
                ));
            }
        }
        if raw.enbcs.is_empty() {
            return Err(bad(
                "enbcs".into(),
                "at least one [[enbcs]] entry is needed".into(),
            ));
        }
        let base = path.parent().unwrap_or(Path::new(""));
        let mut enbcs = Vec::with_capacity(raw.enbcs.len());
        let mut by_cell = HashMap::new();
        for (i, e) in raw.enbcs.into_iter().enumerate() {
            if e.name.trim().is_empty() {
                return Err(bad(format!("enbcs[{i}].name"), "empty name".into()));
            }
            if enbcs.iter().any(|o: &Enbc| o.name == e.name) {
                return Err(bad(
                    format!("enbcs[{i}].name"),
                    format!("{:?} is used twice", e.name),
                ));
            }
            if e.api.as_os_str().is_empty() {
                return Err(bad(format!("enbcs[{i}].api"), "empty socket path".into()));
            }
            if e.cells.is_empty() {
                return Err(bad(format!("enbcs[{i}].cells"), "no cells".into()));
            }
            for &cell in &e.cells {
                if cell == 0 {
                    return Err(bad(
                        format!("enbcs[{i}].cells"),
                        "cell 0 is reserved (it means \"unknown\")".into(),
                    ));
                }
                if let Some(&other) = by_cell.get(&cell) {
                    let other: &Enbc = &enbcs[other];
                    return Err(bad(
                        format!("enbcs[{i}].cells"),
                        format!("cell {cell} is already served by {:?}", other.name),
                    ));
                }
                by_cell.insert(cell, i);
            }
            let api = if e.api.is_relative() && !crate::agent::is_url(&e.api) {
                base.join(&e.api)
            } else {
                e.api
            };
            enbcs.push(Enbc {
                name: e.name,
                api,
                cells: e.cells,
            });
        }
        let mut x2 = HashMap::new();
        for (key, cell) in &raw.x2 {
            let addr: Ipv4Addr = key.trim().parse().map_err(|_| {
                bad(
                    format!("x2.\"{key}\""),
                    "the key must be an IPv4 address".into(),
                )
            })?;
            if *cell == 0 {
                return Err(bad(format!("x2.\"{key}\""), "cell 0 is reserved".into()));
            }
            x2.insert(addr, *cell);
        }
        Ok(Scenario {
            path: path.to_owned(),
            ue_template: raw.ue_identity,
            ues,
            enbcs,
            by_cell,
            x2,
        })
    }

    /// The file this scenario came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The eNBCs, in file order.
    pub fn enbcs(&self) -> &[Enbc] {
        &self.enbcs
    }

    /// Every cell of the scenario, ascending.
    pub fn cells(&self) -> Vec<u32> {
        let mut cells: Vec<u32> = self.by_cell.keys().copied().collect();
        cells.sort_unstable();
        cells
    }

    /// The eNBC serving `cell`.
    pub fn enbc_for_cell(&self, cell: u32) -> Result<&Enbc, LookupError> {
        self.by_cell
            .get(&cell)
            .map(|&i| &self.enbcs[i])
            .ok_or_else(|| LookupError::UnknownCell {
                cell,
                path: self.path.clone(),
            })
    }

    /// The API socket of the agent serving `cell`.
    pub fn agent_for_cell(&self, cell: u32) -> Result<&Path, LookupError> {
        self.enbc_for_cell(cell).map(|e| e.api.as_path())
    }

    /// Whether two cells are served by the same eNBC (a handover between
    /// them moves nothing).
    pub fn same_enbc(&self, a: u32, b: u32) -> bool {
        matches!((self.by_cell.get(&a), self.by_cell.get(&b)), (Some(x), Some(y)) if x == y)
    }

    /// The service-level identity of a UE.
    pub fn ue_identity(&self, imsi: u64) -> Result<String, LookupError> {
        if let Some(identity) = self.ues.get(&imsi) {
            return Ok(identity.clone());
        }
        match &self.ue_template {
            // The template was checked when the scenario was parsed.
            Some(t) => Ok(render_identity(t, imsi).unwrap_or_default()),
            None => Err(LookupError::UnknownImsi {
                imsi,
                path: self.path.clone(),
            }),
        }
    }

    /// The explicit `[x2]` address → cell table (empty if absent).
    pub fn x2_cells(&self) -> &HashMap<Ipv4Addr, u32> {
        &self.x2
    }
}

/// Renders `{imsi}` and `{imsi:0N}` placeholders.
fn render_identity(template: &str, imsi: u64) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find("{imsi") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 5..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed placeholder in {template:?}"))?;
        let spec = &after[..end];
        if spec.is_empty() {
            out.push_str(&imsi.to_string());
        } else {
            let width = spec
                .strip_prefix(":0")
                .and_then(|w| w.parse::<usize>().ok())
                .filter(|&w| w <= 32)
                .ok_or_else(|| {
                    format!("placeholder {{imsi{spec}}} in {template:?}: only {{imsi}} and {{imsi:0N}} (N ≤ 32)")
                })?;
            out.push_str(&format!("{imsi:0width$}"));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = r#"
ue_identity = "imsi-{imsi:015}"
[ues]
1 = "alice"
[[enbcs]]
name = "enbc1"
api = "/run/edgemob/enbc1.sock"
cells = [1]
[[enbcs]]
name = "enbc2"
api = "enbc2.sock"
cells = [2, 3]
[x2]
"12.0.0.5" = 1
"#;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, Path::new("/etc/edgemob/s.toml"))
    }

    #[test]
    fn maps_imsis_and_cells() {
        let s = parse(TWO).unwrap();
        assert_eq!(s.ue_identity(1).unwrap(), "alice");
        assert_eq!(s.ue_identity(42).unwrap(), "imsi-000000000000042");
        assert_eq!(
            s.agent_for_cell(1).unwrap(),
            Path::new("/run/edgemob/enbc1.sock")
        );
        assert_eq!(
            s.agent_for_cell(3).unwrap(),
            Path::new("/etc/edgemob/enbc2.sock"),
            "relative paths are taken from the scenario's folder"
        );
        assert!(s.same_enbc(2, 3) && !s.same_enbc(1, 2));
        assert_eq!(s.cells(), vec![1, 2, 3]);
        assert_eq!(s.x2_cells()[&Ipv4Addr::new(12, 0, 0, 5)], 1);
        let err = s.agent_for_cell(9).unwrap_err().to_string();
        assert!(err.contains("cell 9"), "{err}");
    }

    #[test]
    fn unknown_imsi_without_template_is_an_error() {
        let s = parse("[ues]\n5 = \"e\"\n[[enbcs]]\nname=\"a\"\napi=\"/a\"\ncells=[1]\n").unwrap();
        let err = s.ue_identity(6).unwrap_err().to_string();
        assert!(err.contains("IMSI 6"), "{err}");
    }

    fn invalid_field(text: &str) -> String {
        match parse(text).unwrap_err() {
            ScenarioError::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        let e = "[[enbcs]]\nname=\"a\"\napi=\"/a\"\ncells=[1]\n";
        assert_eq!(invalid_field(&format!("[ues]\nx = \"a\"\n{e}")), "ues.x");
        assert_eq!(invalid_field(&format!("[ues]\n1 = \"\"\n{e}")), "ues.1");
        assert_eq!(invalid_field("ue_identity = \"ue\"\n"), "ue_identity");
        assert_eq!(invalid_field("ue_identity = \"{imsi:x}\"\n"), "ue_identity");
        assert_eq!(invalid_field(""), "enbcs");
        assert_eq!(
            invalid_field(&format!(
                "{e}[[enbcs]]\nname=\"b\"\napi=\"/b\"\ncells=[1]\n"
            )),
            "enbcs[1].cells"
        );
        assert_eq!(
            invalid_field(&format!(
                "{e}[[enbcs]]\nname=\"a\"\napi=\"/b\"\ncells=[2]\n"
            )),
            "enbcs[1].name"
        );
        assert_eq!(
            invalid_field("[[enbcs]]\nname=\"a\"\napi=\"/a\"\ncells=[0]\n"),
            "enbcs[0].cells"
        );
        assert_eq!(
            invalid_field("[[enbcs]]\nname=\"a\"\napi=\"/a\"\ncells=[]\n"),
            "enbcs[0].cells"
        );
        assert_eq!(
            invalid_field(&format!("{e}[x2]\n\"12.0.0\" = 1\n")),
            "x2.\"12.0.0\""
        );
        let err = parse(&format!("{e}bogus = 1\n")).unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");
    }
}
