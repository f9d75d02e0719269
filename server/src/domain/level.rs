//! Classification levels (密级) and zone levels.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A classification level. Ordered: `Confidential < Secret < TopSecret` (TS > S > C).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Level {
    /// 秘密, code `C`.
    #[serde(rename = "C")]
    Confidential,
    /// 机密, code `S`.
    #[serde(rename = "S")]
    Secret,
    /// 绝密, code `TS`.
    #[serde(rename = "TS")]
    TopSecret,
}

impl Level {
    /// The wire and storage code: `TS`, `S` or `C`.
    pub fn code(self) -> &'static str {
        match self {
            Level::Confidential => "C",
            Level::Secret => "S",
            Level::TopSecret => "TS",
        }
    }

    /// The due time a sign-out form proposes for a loan of this level, in hours from now:
    /// top secret back the same working day (8 h), secret in 3 days, confidential in a week.
    /// The custodian may change it; the officer approves the time asked for.
    pub fn default_loan_hours(self) -> i64 {
        match self {
            Level::TopSecret => 8,
            Level::Secret => 3 * 24,
            Level::Confidential => 7 * 24,
        }
    }

    /// The secrecy period (保密期限) a carrier of this level has when none was set: TS 30
    /// years, S 20, C 10 (国家秘密保密期限规定: "不作标注的，绝密级三十年、机密级二十年、
    /// 秘密级十年"). Labels print it as the period mark, e.g. 机密★20年.
    pub fn default_secrecy_years(self) -> u32 {
        match self {
            Level::TopSecret => 30,
            Level::Secret => 20,
            Level::Confidential => 10,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The level of a zone: a classified level or `public` (the outside of a secure area).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ZoneLevel {
    /// Not a secure area.
    #[serde(rename = "public")]
    Public,
    /// A secure area cleared for carriers up to this level.
    #[serde(untagged)]
    Classified(Level),
}

/// In the OpenAPI document: one string, as serialised (`Classified` is untagged).
impl utoipa::PartialSchema for ZoneLevel {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(["public", "C", "S", "TS"]))
            .description(Some("`public`, or the level a secure area is cleared for"))
            .into()
    }
}

impl utoipa::ToSchema for ZoneLevel {}

impl ZoneLevel {
    /// The storage code: `public`, `TS`, `S` or `C`.
    pub fn code(self) -> &'static str {
        match self {
            ZoneLevel::Public => "public",
            ZoneLevel::Classified(level) => level.code(),
        }
    }

    /// Parse a storage code.
    pub fn from_code(code: &str) -> Option<ZoneLevel> {
        Some(match code {
            "public" => ZoneLevel::Public,
            "C" => ZoneLevel::Classified(Level::Confidential),
            "S" => ZoneLevel::Classified(Level::Secret),
            "TS" => ZoneLevel::Classified(Level::TopSecret),
            _ => return None,
        })
    }

    /// Whether a carrier of `level` may be kept in this zone.
    pub fn admits(self, level: Level) -> bool {
        match self {
            ZoneLevel::Public => false,
            ZoneLevel::Classified(zone) => level <= zone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_ts_s_c() {
        assert!(Level::TopSecret > Level::Secret);
        assert!(Level::Secret > Level::Confidential);
    }

    #[test]
    fn zone_level_codes_round_trip_through_serde_and_storage() {
        for (json, code) in [
            ("\"public\"", "public"),
            ("\"TS\"", "TS"),
            ("\"S\"", "S"),
            ("\"C\"", "C"),
        ] {
            let level: ZoneLevel = serde_json::from_str(json).unwrap();
            assert_eq!(level.code(), code);
            assert_eq!(ZoneLevel::from_code(code), Some(level));
            assert_eq!(serde_json::to_string(&level).unwrap(), json);
        }
        assert!(serde_json::from_str::<ZoneLevel>("\"secret\"").is_err());
        assert_eq!(ZoneLevel::from_code("ts"), None);
    }

    #[test]
    fn a_zone_admits_carriers_up_to_its_level() {
        let s = ZoneLevel::Classified(Level::Secret);
        assert!(s.admits(Level::Confidential));
        assert!(s.admits(Level::Secret));
        assert!(!s.admits(Level::TopSecret));
        assert!(!ZoneLevel::Public.admits(Level::Confidential));
    }
}
