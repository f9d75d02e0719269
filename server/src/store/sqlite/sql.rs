//! `ToSql`/`FromSql` for the domain's newtypes, so queries bind and read typed values.
//!
//! Times are stored as RFC 3339 text (sortable, readable in the sqlite shell), dates as
//! `YYYY-MM-DD`, roles as comma-separated names; a value that does not decode is a
//! `FromSqlError`, never a panic.

use rusqlite::ToSql;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};

use crate::domain::approval::{RequestKind, RequestState};
use crate::domain::carrier::{CarrierKind, CarrierState};
use crate::domain::device::DeviceKind;
use crate::domain::ids::{
    AuditId, CarrierId, DeviceId, PersonId, RequestId, SignoutId, UserId, ZoneId,
};
use crate::domain::ids::{CollectionId, RepairId, StocktakeId};
use crate::domain::level::ZoneLevel;
use crate::domain::person::{Category, PersonStatus};
use crate::domain::role::Roles;
use crate::domain::signout::SignoutState;
use crate::domain::time::{Date, Timestamp};

fn invalid(what: &str, text: &str) -> FromSqlError {
    FromSqlError::Other(format!("invalid stored {what}: {text:?}").into())
}

macro_rules! int_sql {
    ($($ty:ident),*) => {$(
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                self.0.to_sql()
            }
        }
        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                i64::column_result(value).map($ty)
            }
        }
    )*};
}
int_sql!(UserId, PersonId, AuditId, CarrierId, SignoutId, RequestId);
int_sql!(StocktakeId, CollectionId, RepairId);

macro_rules! name_sql {
    ($($ty:ident),*) => {$(
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }
        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                $ty::new(text).map_err(|_| invalid(stringify!($ty), text))
            }
        }
    )*};
}
name_sql!(ZoneId, DeviceId);

macro_rules! text_sql {
    ($ty:ty, $to:expr, $from:expr) => {
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                let to: fn(&$ty) -> String = $to;
                Ok(ToSqlOutput::from(to(self)))
            }
        }
        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                let from: fn(&str) -> Option<$ty> = $from;
                from(text).ok_or_else(|| invalid(stringify!($ty), text))
            }
        }
    };
}
text_sql!(Timestamp, |t| t.to_string(), |s| s.parse().ok());
text_sql!(Date, |d| d.to_string(), |s| s.parse().ok());
text_sql!(Roles, |r| r.to_stored(), Roles::from_stored);
text_sql!(ZoneLevel, |l| l.code().to_owned(), ZoneLevel::from_code);
text_sql!(Category, |c| c.as_str().to_owned(), Category::from_name);
text_sql!(
    PersonStatus,
    |s| s.as_str().to_owned(),
    PersonStatus::from_name
);
text_sql!(DeviceKind, |k| k.as_str().to_owned(), DeviceKind::from_name);

macro_rules! static_name_sql {
    ($ty:ty, $what:literal) => {
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }
        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                <$ty>::from_name(text).ok_or_else(|| invalid($what, text))
            }
        }
    };
}
static_name_sql!(CarrierKind, "carrier kind");
static_name_sql!(CarrierState, "carrier state");
static_name_sql!(SignoutState, "sign-out state");
static_name_sql!(RequestKind, "request kind");
static_name_sql!(RequestState, "request state");
static_name_sql!(crate::domain::moves::ScopeKind, "stocktake scope");
static_name_sql!(crate::domain::moves::Resolution, "stocktake resolution");
static_name_sql!(crate::domain::moves::Outcome, "collection outcome");
static_name_sql!(crate::domain::repair::RepairMode, "repair mode");
static_name_sql!(crate::domain::repair::MediaHandling, "media handling");

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::domain::role::Role;

    #[test]
    fn typed_values_round_trip_and_bad_text_is_an_error() {
        let conn = Connection::open_in_memory().unwrap();
        let t = Timestamp::from_unix(1_700_000_000).unwrap();
        let roles = Roles::new(&[Role::Custodian, Role::Guard]).unwrap();
        let (t2, roles2, zone): (Timestamp, Roles, ZoneId) = conn
            .query_row(
                "SELECT ?1, ?2, ?3",
                (t, roles, ZoneId::new("z1").unwrap()),
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((t2, roles2, zone.as_str()), (t, roles, "z1"));
        let bad: rusqlite::Result<Roles> =
            conn.query_row("SELECT 'admin,auditor'", [], |r| r.get(0));
        assert!(bad.is_err());
        let bad: rusqlite::Result<Timestamp> =
            conn.query_row("SELECT 'yesterday'", [], |r| r.get(0));
        assert!(bad.is_err());
    }
}
