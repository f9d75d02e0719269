//! Label print layouts (`/labels?ids=1,2&layout=sheet|roll`, custodian and security officer):
//! the same label SVG as `/carriers/{id}/label.svg`, laid out for the two ways labels are
//! printed: a page of labels (A4, three columns, cut or peeled off) and a single label per
//! page for a label printer's roll (50 × 30 mm, the common thermal roll). The print sizes are
//! in the stylesheet (`@page roll`); the screen shows the same layout with a print button.
//! Like the label, the page carries no carrier title.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::custodian::{frame, not_found, query};
use super::i18n::{Key, t};
use super::session::{Page, WebError};
use crate::AppState;
use crate::auth::capability::CustodyReader;
use crate::domain::ids::CarrierId;
use crate::service::{ServiceError, carriers};

/// The most labels one page lays out.
pub const MAX_LABELS: usize = 120;

/// How the labels are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A4, three columns.
    Sheet,
    /// One label per page, 50 × 30 mm.
    Roll,
}

impl Layout {
    /// From the `layout` parameter (a sheet unless `roll`).
    pub fn from_param(text: &str) -> Layout {
        if text == "roll" {
            Layout::Roll
        } else {
            Layout::Sheet
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Layout::Sheet => "sheet",
            Layout::Roll => "roll",
        }
    }
}

/// The carrier ids of `ids=1,2,3` (unparsable ones dropped, duplicates kept: two labels for
/// one carrier are two labels), at most [`MAX_LABELS`].
pub fn parse_ids(text: &str) -> Vec<CarrierId> {
    text.split(',')
        .filter_map(|part| part.trim().parse().ok())
        .take(MAX_LABELS)
        .collect()
}

/// `GET /labels?ids=&layout=`.
pub async fn labels(
    page: Page<CustodyReader>,
    State(state): State<AppState>,
) -> Result<Response, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let q = query(session);
    let layout = Layout::from_param(q.get("layout").trim());
    let ids = parse_ids(q.get("ids"));
    let mut shown = Vec::new();
    for id in ids {
        match carriers::one(&state, &page.cap, id).await {
            Ok(c) => shown.push((c.summary.id, c.summary.control_no)),
            Err(ServiceError::NotFound) => {
                return Ok(not_found(session, Key::CarrierNotFound));
            }
            Err(e) => return Err(session.internal(e)),
        }
    }
    if shown.is_empty() {
        return Ok(not_found(session, Key::CarrierNotFound));
    }
    let content: Markup = html! {
        div.label-print-bar {
            h1 { (t(lang, if layout == Layout::Roll { Key::LabelRoll } else { Key::LabelSheet })) }
            button #label-print-now type="button" data-print="true" { (t(lang, Key::PrintNow)) }
        }
        div #label-layout data-layout=(layout.as_str()) data-count=(shown.len()) {
            @for (id, control_no) in &shown {
                div.label-cell data-carrier-id=(id) {
                    img.label-img src={ "/carriers/" (id) "/label.svg" }
                        alt={ (t(lang, Key::Label)) " " (control_no) };
                }
            }
        }
    };
    let class = format!("label-print label-{}", layout.as_str());
    Ok(frame(session, t(lang, Key::PrintNow), &class, content).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_layouts_are_read_leniently() {
        assert_eq!(parse_ids("1, 2,x,3").len(), 3);
        assert!(parse_ids("").is_empty());
        assert_eq!(parse_ids(&"1,".repeat(500)).len(), MAX_LABELS);
        assert_eq!(Layout::from_param("roll"), Layout::Roll);
        assert_eq!(Layout::from_param("anything"), Layout::Sheet);
    }
}
