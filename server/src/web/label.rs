//! Printable carrier labels: a Code 128 barcode of the label text (`CU…`), the control
//! number and the level in Chinese and English, as one SVG.
//!
//! # Code 128
//! ISO/IEC 15417, code set B only (printable ASCII 32..=126, which covers every Custos label:
//! `CU`, `A-Z`, `0-9`, `-` and the MOD 37-2 check character). A symbol is the start character
//! (Start B, value 104), one symbol per data character (value = ASCII - 32), the check symbol
//! and the stop pattern. The check value is (104 + Σ position × value) mod 103, positions
//! counted from 1. Every symbol is three bars and three spaces, each 1 to 4 modules wide, 11
//! modules in all; the stop pattern is four bars and three spaces, 13 modules. A quiet zone of
//! ten modules on each side is part of the symbol.
//!
//! # What a label shows
//! Labels are stuck on the carrier and are seen by anyone who handles it, so a label carries
//! the barcode, its text, the control number, the copy number and the level, and NEVER the
//! title: [`label_svg`] does not take one.

use std::fmt::Write as _;

use crate::domain::level::Level;
use crate::domain::secrecy;

use super::i18n::{self, Lang, t};

/// Start B's symbol value.
pub const START_B: u8 = 104;
/// The stop pattern's value.
pub const STOP: u8 = 106;
/// The quiet zone on each side, in modules (ISO/IEC 15417: at least 10X).
pub const QUIET_ZONE: u32 = 10;
/// The longest text [`code128b`] encodes (labels are at most 36 characters).
pub const MAX_TEXT: usize = 64;

/// Element widths (bar, space, bar, space, bar, space[, bar]) of the symbols 0..=106, in
/// modules, from the symbol table of ISO/IEC 15417.
const PATTERNS: [&[u8]; 107] = [
    b"212222", b"222122", b"222221", b"121223", b"121322", b"131222", b"122213", b"122312",
    b"132212", b"221213", b"221312", b"231212", b"112232", b"122132", b"122231", b"113222",
    b"123122", b"123221", b"223211", b"221132", b"221231", b"213212", b"223112", b"312131",
    b"311222", b"321122", b"321221", b"312212", b"322112", b"322211", b"212123", b"212321",
    b"232121", b"111323", b"131123", b"131321", b"112313", b"132113", b"132311", b"211313",
    b"231113", b"231311", b"112133", b"112331", b"132131", b"113123", b"113321", b"133121",
    b"313121", b"211331", b"231131", b"213113", b"213311", b"213131", b"311123", b"311321",
    b"331121", b"312113", b"312311", b"332111", b"314111", b"221411", b"431111", b"111224",
    b"111422", b"121124", b"121421", b"141122", b"141221", b"112214", b"112412", b"122114",
    b"122411", b"142112", b"142211", b"241211", b"221114", b"413111", b"241112", b"134111",
    b"111242", b"121142", b"121241", b"114212", b"124112", b"124211", b"411212", b"421112",
    b"421211", b"212141", b"214121", b"412121", b"111143", b"111341", b"131141", b"114113",
    b"114311", b"411113", b"411311", b"113141", b"114131", b"311141", b"411131", b"211412",
    b"211214", b"211232", b"2331112",
];

/// Why a text cannot be drawn in code set B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Code128Error {
    /// Empty or longer than [`MAX_TEXT`].
    #[error("text must be 1 to 64 characters")]
    Length,
    /// A character outside printable ASCII.
    #[error("character {at} is not printable ASCII")]
    Character {
        /// Its byte position.
        at: usize,
    },
}

/// The symbol values of `text` in code set B: Start B, the data, the mod-103 check symbol and
/// the stop (106).
pub fn code128b(text: &str) -> Result<Vec<u8>, Code128Error> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_TEXT {
        return Err(Code128Error::Length);
    }
    let mut symbols = Vec::with_capacity(bytes.len() + 3);
    symbols.push(START_B);
    let mut sum = u32::from(START_B);
    for (at, b) in bytes.iter().enumerate() {
        if !(0x20..=0x7E).contains(b) {
            return Err(Code128Error::Character { at });
        }
        let value = b - 0x20;
        // at < 64, value < 95: the sum stays far below u32::MAX.
        sum += (at as u32 + 1) * u32::from(value);
        symbols.push(value);
    }
    // The remainder is below 103, so it fits a u8.
    symbols.push((sum % 103) as u8);
    symbols.push(STOP);
    Ok(symbols)
}

/// The bars of a symbol sequence as (offset, width) in modules, the quiet zone included in
/// the offsets; and the total width with both quiet zones.
pub fn bars(symbols: &[u8]) -> (Vec<(u32, u32)>, u32) {
    let mut out = Vec::new();
    let mut x = QUIET_ZONE;
    for symbol in symbols {
        let widths = PATTERNS.get(usize::from(*symbol)).copied().unwrap_or(b"");
        for (i, w) in widths.iter().enumerate() {
            let w = u32::from(w - b'0');
            if i % 2 == 0 {
                out.push((x, w));
            }
            x += w;
        }
    }
    (out, x + QUIET_ZONE)
}

/// The modules of a symbol sequence as `1` (bar) and `0` (space), without quiet zones: the
/// form reference tables print.
pub fn modules(symbols: &[u8]) -> String {
    let mut out = String::new();
    for symbol in symbols {
        let widths = PATTERNS.get(usize::from(*symbol)).copied().unwrap_or(b"");
        for (i, w) in widths.iter().enumerate() {
            let bit = if i % 2 == 0 { '1' } else { '0' };
            for _ in 0..(w - b'0') {
                out.push(bit);
            }
        }
    }
    out
}

/// What a label shows. No title field: labels are seen by anyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFacts<'a> {
    /// The control number.
    pub control_no: &'a str,
    /// The barcode text (`CU…` with its check character).
    pub label_text: &'a str,
    /// The level.
    pub level: Level,
    /// Copy number and number of copies, if numbered.
    pub copy: Option<(u32, Option<u32>)>,
    /// The carrier's secrecy period (保密期限) in years, printed as the period mark.
    pub secrecy_years: u32,
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Height of the bars, in modules.
const BAR_HEIGHT: u32 = 50;
/// Module width when printed, in millimetres (×100): 0.33 mm, a common X dimension.
const MODULE_MM_X100: u32 = 33;

/// The label as an SVG document: level (Chinese and English) on top, the bars, the barcode
/// text under them, then the control number and the copy number. Presentation attributes
/// only (no `style`), so it renders under the pages' Content-Security-Policy.
pub fn label_svg(facts: &LabelFacts<'_>) -> Result<String, Code128Error> {
    let symbols = code128b(facts.label_text)?;
    let (bars, width) = bars(&symbols);
    let top = 16;
    let height = top + BAR_HEIGHT + 34;
    // The level with the carrier's secrecy period mark (机密★10年), then the English name.
    let level = format!(
        "{} {}",
        secrecy::mark(t(Lang::Zh, i18n::level(facts.level)), facts.secrecy_years),
        t(Lang::En, i18n::level(facts.level))
    );
    let mm = |modules: u32| {
        let hundredths = modules * MODULE_MM_X100;
        format!("{}.{:02}mm", hundredths / 100, hundredths % 100)
    };
    let mut svg = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        svg,
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{w}" height="{h}" viewBox="0 0 {width} {height}" role="img" aria-label="{aria}">
<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>
<text id="label-level" x="{mid}" y="12" text-anchor="middle" font-family="sans-serif" font-size="11" font-weight="bold" fill="#000000">{level}</text>
<path id="label-bars" fill="#000000" d=""##,
        w = mm(width),
        h = mm(height),
        aria = escape(facts.control_no),
        mid = width / 2,
        level = escape(&level),
    );
    for (x, w) in &bars {
        let _ = write!(svg, "M{x} {top}h{w}v{BAR_HEIGHT}h-{w}z");
    }
    let text_y = top + BAR_HEIGHT + 10;
    let _ = write!(
        svg,
        r##""/>
<text id="label-text" x="{mid}" y="{text_y}" text-anchor="middle" font-family="monospace" font-size="9" fill="#000000">{text}</text>
<text id="label-control-no" x="{mid}" y="{no_y}" text-anchor="middle" font-family="sans-serif" font-size="13" font-weight="bold" fill="#000000">{no}</text>
"##,
        mid = width / 2,
        text = escape(facts.label_text),
        no_y = text_y + 18,
        no = escape(facts.control_no),
    );
    if let Some((copy_no, copies)) = facts.copy {
        let copy = match copies {
            Some(total) => format!("{copy_no}/{total}"),
            None => copy_no.to_string(),
        };
        let _ = writeln!(
            svg,
            r##"<text id="label-copy" x="{x}" y="{y}" text-anchor="end" font-family="sans-serif" font-size="9" fill="#000000">№ {copy}</text>"##,
            x = width - QUIET_ZONE,
            y = text_y + 18,
        );
    }
    svg.push_str("</svg>\n");
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_symbol_has_eleven_modules_and_the_stop_thirteen() {
        for (value, widths) in PATTERNS.iter().enumerate() {
            let sum: u32 = widths.iter().map(|w| u32::from(w - b'0')).sum();
            let expected = if value == usize::from(STOP) { 13 } else { 11 };
            assert_eq!(sum, expected, "symbol {value}");
            assert_eq!(widths.len(), if expected == 13 { 7 } else { 6 });
            assert!(widths.iter().all(|w| (b'1'..=b'4').contains(w)));
        }
    }

    /// Module strings of the reference table (1 = bar), for a spread of values.
    #[test]
    fn symbols_match_the_reference_table() {
        for (value, bits) in [
            (0u8, "11011001100"),
            (1, "11001101100"),
            (16, "10011101100"),
            (33, "10100011000"),
            (48, "11101110110"),
            (60, "11101111010"),
            (77, "11110111010"),
            (94, "10001011110"),
            (102, "11110101110"),
            (103, "11010000100"),
            (104, "11010010000"),
            (105, "11010011100"),
            (106, "1100011101011"),
        ] {
            assert_eq!(modules(&[value]), bits, "symbol {value}");
        }
    }

    /// The worked check-digit example of the Code 128 literature: "PJJ123C" in code set B,
    /// 104 + 48·1 + 42·2 + 42·3 + 17·4 + 18·5 + 19·6 + 35·7 = 879, 879 mod 103 = 55.
    #[test]
    fn the_check_symbol_is_the_weighted_sum_mod_103() {
        assert_eq!(
            code128b("PJJ123C").unwrap(),
            [104, 48, 42, 42, 17, 18, 19, 35, 55, 106]
        );
        // "Wikipedia": 104 + 55·1 + 73·2 + 75·3 + 73·4 + 80·5 + 69·6 + 68·7 + 73·8 + 65·9
        // = 3281, 3281 mod 103 = 88.
        let symbols = code128b("Wikipedia").unwrap();
        assert_eq!(&symbols[..10], [104, 55, 73, 75, 73, 80, 69, 68, 73, 65]);
        assert_eq!(symbols[10], 88);
        assert_eq!(symbols[11], STOP);
    }

    #[test]
    fn a_custos_label_encodes_completely() {
        let symbols = code128b("CU2024-0017X").unwrap();
        // C=35 U=53 2=18 0=16 2=18 4=20 -=13 0=16 0=16 1=17 7=23 X=56
        assert_eq!(
            &symbols[1..13],
            [35, 53, 18, 16, 18, 20, 13, 16, 16, 17, 23, 56]
        );
        let weighted: u32 = symbols[1..13]
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u32 + 1) * u32::from(*v))
            .sum();
        assert_eq!(u32::from(symbols[13]), (104 + weighted) % 103);
        let (bars, width) = bars(&symbols);
        assert_eq!(width, 2 * QUIET_ZONE + 11 * 14 + 13);
        assert_eq!(
            bars.first(),
            Some(&(QUIET_ZONE, 2)),
            "Start B begins 2 wide"
        );
        let last = bars.last().unwrap();
        assert_eq!(last.0 + last.1, width - QUIET_ZONE, "stop ends with a bar");
        // The module string starts with Start B and ends with the stop.
        let m = modules(&symbols);
        assert!(m.starts_with("11010010000") && m.ends_with("1100011101011"));
        assert_eq!(m.len() as u32, width - 2 * QUIET_ZONE);
    }

    #[test]
    fn only_printable_ascii_of_reasonable_length_is_encoded() {
        assert_eq!(code128b(""), Err(Code128Error::Length));
        assert_eq!(code128b(&"A".repeat(65)), Err(Code128Error::Length));
        assert_eq!(code128b("AB\tC"), Err(Code128Error::Character { at: 2 }));
        assert_eq!(code128b("密"), Err(Code128Error::Character { at: 0 }));
        assert!(code128b(" ~").is_ok());
    }

    #[test]
    fn the_svg_names_number_and_level_and_nothing_else() {
        let svg = label_svg(&LabelFacts {
            control_no: "2024-0017",
            label_text: "CU2024-0017X",
            level: Level::TopSecret,
            copy: Some((1, Some(3))),
            secrecy_years: 25,
        })
        .unwrap();
        assert!(svg.starts_with("<?xml"));
        assert!(svg.contains(">2024-0017</text>"));
        assert!(svg.contains(">CU2024-0017X</text>"));
        assert!(
            svg.contains("绝密★25年 Top Secret"),
            "the carrier's own period"
        );
        assert!(svg.contains("№ 1/3"));
        assert!(!svg.contains("style="), "no inline styles under the CSP");
        assert_eq!(svg.matches("<svg").count(), 1);
        assert!(svg.trim_end().ends_with("</svg>"));
        let bar_count = svg.matches("v50h-").count();
        assert_eq!(
            bar_count,
            3 * 14 + 4,
            "three bars a symbol, four in the stop"
        );
    }
}
