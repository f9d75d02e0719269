//! What a site registers: the accounts' generated passwords, the zones, and the people and
//! carriers drawn from a seeded RNG (with [`Site`]'s step that posts them). Kept apart from the
//! assembly so the plan of the data (who may borrow what, which carrier lives where) reads, and
//! is tested, on its own.

use std::collections::HashMap;
use std::io::Read as _;

use custos_protocol::barcode::CarrierLabel;
use custos_protocol::epc::{Epc, tds};
use serde_json::json;

use super::api::{ApiClient, created_id};
use super::device::DeviceRole;
use super::options::SeedOptions;
use super::{Site, SiteError};

/// GS1 company prefix of the site's EPCs (carriers and badges; GIAI-96, filter 0).
pub const COMPANY_PREFIX: &str = "0614141";

/// GIAI asset reference of carrier `i` is this plus `i`.
const CARRIER_ASSET_BASE: u64 = 10_000;

/// GIAI asset reference of person `i`'s badge is this plus `i`.
const BADGE_ASSET_BASE: u64 = 90_000;

/// A deterministic RNG (SplitMix64): the same seed gives the same site.
#[derive(Debug, Clone)]
pub struct SeedRng(u64);

impl SeedRng {
    /// An RNG starting from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> SeedRng {
        SeedRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0; the tiny modulo bias does not matter here).
    pub fn below(&mut self, n: usize) -> usize {
        // usize fits in u64 on every supported target; the result is below n.
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Classification level of a carrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// 秘密.
    Confidential,
    /// 机密.
    Secret,
    /// 绝密.
    TopSecret,
}

impl Level {
    /// `TS`, `S`, `C`.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Level::TopSecret => "TS",
            Level::Secret => "S",
            Level::Confidential => "C",
        }
    }

    /// 绝密, 机密, 秘密.
    #[must_use]
    pub fn chinese(self) -> &'static str {
        match self {
            Level::TopSecret => "绝密",
            Level::Secret => "机密",
            Level::Confidential => "秘密",
        }
    }

    /// From `TS`, `S`, `C`.
    #[must_use]
    pub fn from_code(code: &str) -> Option<Level> {
        match code {
            "TS" => Some(Level::TopSecret),
            "S" => Some(Level::Secret),
            "C" => Some(Level::Confidential),
            _ => None,
        }
    }
}

/// Category of a person (涉密人员类别).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// 核心: up to TS.
    Core,
    /// 重要: up to S.
    Important,
    /// 一般: up to C.
    General,
}

impl Category {
    /// The API name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Category::Core => "core",
            Category::Important => "important",
            Category::General => "general",
        }
    }

    /// The highest level they may hold.
    #[must_use]
    pub fn max_level(self) -> Level {
        match self {
            Category::Core => Level::TopSecret,
            Category::Important => Level::Secret,
            Category::General => Level::Confidential,
        }
    }
}

/// One account, with its password in clear (the site made it up and prints it).
#[derive(Clone)]
pub struct Login {
    /// The role, as the API names it.
    pub role: &'static str,
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("role", &self.role)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A registered person.
#[derive(Debug, Clone)]
pub struct SeedPerson {
    /// Server id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Department.
    pub department: String,
    /// Category.
    pub category: Category,
    /// Badge EPC, if issued.
    pub badge: Option<Epc>,
    /// Whether the secrecy training has lapsed.
    pub training_expired: bool,
    /// Whether the confidentiality commitment is signed.
    pub commitment_signed: bool,
}

impl SeedPerson {
    /// Whether an issue to them of a carrier at `level` passes the rules.
    #[must_use]
    pub fn may_borrow(&self, level: Level) -> bool {
        !self.training_expired && self.commitment_signed && level <= self.category.max_level()
    }
}

/// A registered carrier.
#[derive(Debug, Clone)]
pub struct SeedCarrier {
    /// Server id.
    pub id: String,
    /// Control number, e.g. `S-2026-0020`.
    pub control_no: String,
    /// Level.
    pub level: Level,
    /// Kind, as the API names it.
    pub kind: &'static str,
    /// Its UHF tag (GIAI-96).
    pub epc: Epc,
    /// Its barcode label text, e.g. `CUS-2026-0020K`.
    pub label: String,
    /// Its home cabinet, if it has one.
    pub home: Option<String>,
}

/// Everything the seed registered.
#[derive(Debug, Clone, Default)]
pub struct Seeded {
    /// People.
    pub people: Vec<SeedPerson>,
    /// Carriers.
    pub carriers: Vec<SeedCarrier>,
}

impl Seeded {
    /// The carrier with this EPC.
    #[must_use]
    pub fn carrier_by_epc(&self, epc: &Epc) -> Option<&SeedCarrier> {
        self.carriers.iter().find(|c| &c.epc == epc)
    }

    /// The person with this id.
    #[must_use]
    pub fn person(&self, id: &str) -> Option<&SeedPerson> {
        self.people.iter().find(|p| p.id == id)
    }

    /// The person with this badge.
    #[must_use]
    pub fn person_by_badge(&self, epc: &Epc) -> Option<&SeedPerson> {
        self.people.iter().find(|p| p.badge.as_ref() == Some(epc))
    }
}

/// A zone of the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone {
    /// Id.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// `TS`, `S`, `C` or `public`.
    pub level: &'static str,
}

/// The site's zones, one per level: the vault (TS), the registry (S), the office (C) and the
/// public lobby.
pub const ZONES: [Zone; 4] = [
    Zone {
        id: "vault",
        name: "绝密室 Vault",
        level: "TS",
    },
    Zone {
        id: "registry",
        name: "机要室 Registry",
        level: "S",
    },
    Zone {
        id: "office",
        name: "办公区 Office",
        level: "C",
    },
    Zone {
        id: "lobby",
        name: "大厅 Lobby",
        level: "public",
    },
];

const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高", "林",
    "何", "郭", "马", "罗",
];
const GIVEN_NAMES: [&str; 24] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀英", "霞", "建华", "文博", "晨", "宇航", "欣然",
];
const DEPARTMENTS: [&str; 6] = [
    "科研一部",
    "科研二部",
    "总体设计部",
    "档案室",
    "综合办公室",
    "信息中心",
];
const PROJECTS: [&str; 8] = [
    "天枢", "北辰", "玄武", "启明", "长庚", "太白", "织女", "河汉",
];
const KINDS: [(&str, &[&str]); 7] = [
    (
        "paper",
        &[
            "总体技术方案",
            "研制任务书",
            "试验大纲",
            "会议纪要",
            "设计图纸",
        ],
    ),
    ("magnetic_disk", &["试验数据磁带", "备份磁盘"]),
    ("optical_disc", &["图纸光盘", "资料光盘"]),
    ("flash", &["数据U盘", "交换存储卡"]),
    ("hard_disk", &["仿真数据硬盘", "移动硬盘"]),
    ("laptop", &["涉密便携机"]),
    ("device", &["涉密相机", "录音笔"]),
];

/// The EPC of carrier `i`.
///
/// # Errors
/// [`SiteError::Epc`] (cannot happen for the site's prefix and small numbers).
pub fn carrier_epc(i: usize) -> Result<Epc, SiteError> {
    giai(CARRIER_ASSET_BASE + i as u64)
}

/// The badge EPC of person `i`.
///
/// # Errors
/// [`SiteError::Epc`] (cannot happen for the site's prefix and small numbers).
pub fn badge_epc(i: usize) -> Result<Epc, SiteError> {
    giai(BADGE_ASSET_BASE + i as u64)
}

fn giai(asset: u64) -> Result<Epc, SiteError> {
    tds::giai96(0, COMPANY_PREFIX, asset).map_err(|e| SiteError::Epc(e.to_string()))
}

/// The person plan of index `i` (the pattern repeats every 20 people): five core, seven
/// important, eight general; one with lapsed training (an important one), one without a
/// signed commitment (a general one), three without a badge.
fn person_plan(i: usize) -> (Category, bool, bool, bool) {
    let k = i % 20;
    let category = match k {
        0..=4 => Category::Core,
        5..=11 => Category::Important,
        _ => Category::General,
    };
    let training_expired = k == 6;
    let commitment_signed = k != 13;
    let badge = !matches!(k, 4 | 11 | 19);
    (category, training_expired, commitment_signed, badge)
}

/// The level of carrier `i` (the pattern repeats every 20): 15 % TS, 40 % S, 45 % C.
fn carrier_level(i: usize) -> Level {
    match i % 20 {
        0..=2 => Level::TopSecret,
        3..=10 => Level::Secret,
        _ => Level::Confidential,
    }
}

/// Eight carriers in ten have a home cabinet (when there are cabinets); the others are kept in
/// the registry's strong room.
fn carrier_homed(i: usize) -> bool {
    i % 5 != 4
}

/// Sixteen random characters for a password (no look-alikes), from the OS's entropy.
pub(super) fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut seed = [0u8; 8];
    let from_os = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .is_ok();
    let mut state = u64::from_le_bytes(seed);
    if !from_os {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        state ^= (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32);
    }
    let mut rng = SeedRng::new(state);
    (0..16).map(|_| char::from(*rng.pick(ALPHABET))).collect()
}

impl Site {
    /// Registers people (as a security officer) and carriers (as the custodian).
    pub(super) async fn seed(
        &mut self,
        api: &ApiClient,
        options: SeedOptions,
    ) -> Result<(), SiteError> {
        let mut rng = SeedRng::new(options.rng_seed);
        let officer = self.session(api, "officer1").await?;
        let custodian = self.session(api, "custodian").await?;
        let now = self.state.now();
        let day = |days: i64| now.plus_secs(days * 86_400).date().to_string();
        let mut names = std::collections::HashSet::new();
        for i in 0..options.people {
            let (category, training_expired, commitment_signed, has_badge) = person_plan(i);
            let name = loop {
                let name = format!("{}{}", rng.pick(&SURNAMES), rng.pick(&GIVEN_NAMES));
                if names.insert(name.clone()) || names.len() >= SURNAMES.len() * GIVEN_NAMES.len() {
                    break name;
                }
            };
            let department = (*rng.pick(&DEPARTMENTS)).to_owned();
            let badge = if has_badge { Some(badge_epc(i)?) } else { None };
            let mut body = json!({
                "name": name,
                "department": department,
                "category": category.name(),
                "training_valid_until": if training_expired { day(-30) } else { day(2 * 365) },
            });
            if let Some(badge) = &badge {
                body["badge_tag"] = json!(badge.to_string());
            }
            if commitment_signed {
                body["commitment_signed_on"] = json!(day(-200));
            }
            let id = created_id(&officer.post("/api/v1/people", &body).await?, "person")?;
            self.seeded.people.push(SeedPerson {
                id,
                name,
                department,
                category,
                badge,
                training_expired,
                commitment_signed,
            });
        }

        let cabinets: Vec<(String, bool)> = self
            .devices
            .iter()
            .filter(|d| d.role == DeviceRole::Cabinet)
            .map(|d| (d.id.clone(), d.zone == Some("vault")))
            .collect();
        let vaults: Vec<&String> = cabinets
            .iter()
            .filter(|(_, v)| *v)
            .map(|(c, _)| c)
            .collect();
        let mut counters: HashMap<Level, u32> = HashMap::new();
        let (mut next_any, mut next_vault) = (0usize, 0usize);
        for i in 0..options.carriers {
            let level = carrier_level(i);
            let (kind, docs) = KINDS[i % KINDS.len()];
            let seq = counters.entry(level).or_default();
            *seq += 1;
            let control_no = format!("{}-2026-{:04}", level.code(), seq);
            let label = CarrierLabel::new(&control_no)
                .map_err(|e| SiteError::Answer(format!("label of {control_no}: {e}")))?
                .to_string();
            let epc = carrier_epc(i)?;
            let title = format!("{}{}", rng.pick(&PROJECTS), rng.pick(docs));
            let home = if carrier_homed(i) && !cabinets.is_empty() {
                if level == Level::TopSecret && !vaults.is_empty() {
                    next_vault += 1;
                    Some(vaults[(next_vault - 1) % vaults.len()].clone())
                } else {
                    next_any += 1;
                    Some(cabinets[(next_any - 1) % cabinets.len()].0.clone())
                }
            } else {
                None
            };
            let mut body = json!({
                "control_no": control_no,
                "kind": kind,
                "level": level.code(),
                "title": title,
                "owner_unit": *rng.pick(&DEPARTMENTS),
                "tags": [format!("epc:{epc}"), format!("barcode:{label}")],
            });
            if level == Level::TopSecret {
                body["copies"] = json!(2);
                body["copy_no"] = json!(1 + *seq % 2);
            }
            // Every third secret carrier was marked with a shorter secrecy period than the
            // level's longest (机密★10年); the others have the default (机密★20年).
            if level == Level::Secret && *seq % 3 == 0 {
                body["secrecy_years"] = json!(10);
            }
            if let Some(home) = &home {
                body["home_device"] = json!(home);
            }
            let id = created_id(&custodian.post("/api/v1/carriers", &body).await?, "carrier")?;
            self.seeded.carriers.push(SeedCarrier {
                id,
                control_no,
                level,
                kind,
                epc,
                label,
                home,
            });
        }
        tracing::info!(
            people = self.seeded.people.len(),
            carriers = self.seeded.carriers.len(),
            "seeded"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_rng_is_deterministic_and_spreads() {
        let a: Vec<u64> = {
            let mut r = SeedRng::new(7);
            (0..5).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = SeedRng::new(7);
            (0..5).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        let mut r = SeedRng::new(8);
        assert_ne!(r.next_u64(), a[0]);
        let mut seen = [false; 7];
        for _ in 0..200 {
            seen[r.below(7)] = true;
        }
        assert!(seen.iter().all(|s| *s), "every value of below(7) comes up");
    }

    #[test]
    fn the_people_plan_has_every_category_and_each_refusal_case() {
        let plans: Vec<_> = (0..20).map(person_plan).collect();
        for c in [Category::Core, Category::Important, Category::General] {
            assert!(plans.iter().any(|p| p.0 == c), "{c:?}");
        }
        assert_eq!(
            plans.iter().filter(|p| p.1).count(),
            1,
            "one lapsed training"
        );
        assert_eq!(
            plans.iter().filter(|p| !p.2).count(),
            1,
            "one without commitment"
        );
        assert_eq!(
            plans.iter().filter(|p| !p.3).count(),
            3,
            "three without badge"
        );
        let levels: Vec<_> = (0..100).map(carrier_level).collect();
        assert_eq!(
            levels.iter().filter(|l| **l == Level::TopSecret).count(),
            15
        );
        assert_eq!(levels.iter().filter(|l| **l == Level::Secret).count(), 40);
        assert_eq!((0..100).filter(|i| carrier_homed(*i)).count(), 80);
    }

    #[test]
    fn epcs_are_giai96_and_distinct() {
        let c = carrier_epc(3).unwrap();
        assert_eq!(
            tds::pure_identity_uri(&c).as_deref(),
            Some("urn:epc:id:giai:0614141.10003")
        );
        assert_ne!(carrier_epc(3).unwrap(), badge_epc(3).unwrap());
    }

    #[test]
    fn passwords_meet_the_policy_and_differ() {
        let a = generate_password();
        assert_eq!(a.chars().count(), 16);
        assert_ne!(a, generate_password());
    }
}
