//! EU-style VAT identification numbers: a two-letter prefix (the ISO country code, except `EL`
//! for Greece and `XI` for Northern Ireland) followed by the national number.
//!
//! Every EU member state and the United Kingdom is known. The national format is checked for all
//! of them; the check digits are verified where the algorithm is published and unambiguous
//! (AT, BE, CZ legal entities, DE, DK, EL, FI, FR numeric keys, GB/XI, IT, LU, NL, PL, PT, SE).
//! The other countries (and FR alphanumeric keys) are checked for format only, which never
//! rejects a real number.

/// A VAT id that passed every check, in normal form (upper case, no separators).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaxId {
    normalized: String,
    country: &'static str,
}

impl TaxId {
    /// The id with its prefix, e.g. `DE136695976`.
    pub fn as_str(&self) -> &str {
        &self.normalized
    }

    /// ISO 3166-1 alpha-2 country of the id (`GR` for an `EL` id, `GB` for an `XI` id).
    pub fn country(&self) -> &'static str {
        self.country
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TaxIdError {
    #[error("invalid format: the tax id is empty")]
    Empty,
    #[error("invalid format: a VAT id starts with a two-letter country prefix, found {0:?}")]
    NoPrefix(String),
    #[error("invalid format: Greek VAT ids use the prefix EL, not GR")]
    GreekPrefix,
    #[error("VAT ids with the country prefix {0:?} are not supported")]
    UnsupportedCountry(String),
    #[error(
        "invalid format: {prefix} VAT ids are {prefix} followed by {expected}, found {found:?}"
    )]
    Format {
        prefix: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("invalid checksum: the check digits of {0} are wrong")]
    Checksum(String),
}

impl TaxIdError {
    /// The reason code for this error.
    pub fn code(&self) -> &'static str {
        use crate::reasons::code;
        match self {
            Self::UnsupportedCountry(_) => code::UNSUPPORTED_COUNTRY,
            _ => code::INVALID_TAX_ID,
        }
    }
}

/// Why a national number failed.
enum Fault {
    Format,
    Checksum,
}

/// A national number's check: the canonical number on success.
type Check = fn(&str) -> Result<String, Fault>;

struct Scheme {
    prefix: &'static str,
    country: &'static str,
    expected: &'static str,
    check: Check,
}

const SCHEMES: &[Scheme] = &[
    scheme("AT", "AT", "U and 8 digits", at),
    scheme("BE", "BE", "10 digits starting with 0 or 1", be),
    scheme("BG", "BG", "9 or 10 digits", |n| digits_of_len(n, &[9, 10])),
    scheme("CY", "CY", "8 digits and a letter", cy),
    scheme("CZ", "CZ", "8, 9 or 10 digits", cz),
    scheme("DE", "DE", "9 digits not starting with 0", de),
    scheme("DK", "DK", "8 digits not starting with 0", dk),
    scheme("EE", "EE", "9 digits", |n| digits_of_len(n, &[9])),
    scheme("EL", "GR", "9 digits", el),
    scheme(
        "ES",
        "ES",
        "9 characters: a letter or digit, 7 digits, a letter or digit",
        es,
    ),
    scheme("FI", "FI", "8 digits", fi),
    scheme("FR", "FR", "a 2-character key and the 9-digit SIREN", fr),
    scheme("GB", "GB", "9 or 12 digits, or GD/HA and 3 digits", gb),
    scheme("HR", "HR", "11 digits", |n| digits_of_len(n, &[11])),
    scheme("HU", "HU", "8 digits", |n| digits_of_len(n, &[8])),
    scheme(
        "IE",
        "IE",
        "7 digits and 1 or 2 letters (or the old 8-character form)",
        ie,
    ),
    scheme("IT", "IT", "11 digits", it),
    scheme("LT", "LT", "9 or 12 digits", |n| digits_of_len(n, &[9, 12])),
    scheme("LU", "LU", "8 digits", lu),
    scheme("LV", "LV", "11 digits", |n| digits_of_len(n, &[11])),
    scheme("MT", "MT", "8 digits", |n| digits_of_len(n, &[8])),
    scheme("NL", "NL", "9 digits, B and 2 digits", nl),
    scheme("PL", "PL", "10 digits", pl),
    scheme("PT", "PT", "9 digits", pt),
    scheme("RO", "RO", "2 to 10 digits not starting with 0", ro),
    scheme("SE", "SE", "12 digits ending in 01", se),
    scheme("SI", "SI", "8 digits not starting with 0", si),
    scheme("SK", "SK", "10 digits", |n| digits_of_len(n, &[10])),
    scheme("XI", "GB", "9 or 12 digits, or GD/HA and 3 digits", gb),
];

const fn scheme(
    prefix: &'static str,
    country: &'static str,
    expected: &'static str,
    check: Check,
) -> Scheme {
    Scheme {
        prefix,
        country,
        expected,
        check,
    }
}

/// Upper-cases `raw` and removes spaces, dots and dashes.
pub(crate) fn normalize(raw: &str) -> String {
    raw.chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn scheme_for(normalized: &str) -> Option<&'static Scheme> {
    let prefix = normalized.get(..2)?;
    SCHEMES.iter().find(|s| s.prefix == prefix)
}

/// The ISO country of a (possibly invalid) tax id's prefix, when the prefix is a known one.
pub(crate) fn country_of(raw: &str) -> Option<&'static str> {
    scheme_for(&normalize(raw)).map(|s| s.country)
}

/// Checks `raw` and returns it in normal form.
pub(crate) fn parse(raw: &str) -> Result<TaxId, TaxIdError> {
    let normalized = normalize(raw);
    if normalized.is_empty() {
        return Err(TaxIdError::Empty);
    }
    let prefix = normalized
        .get(..2)
        .filter(|p| p.bytes().all(|b| b.is_ascii_uppercase()));
    let Some(prefix) = prefix else {
        return Err(TaxIdError::NoPrefix(normalized));
    };
    if prefix == "GR" {
        return Err(TaxIdError::GreekPrefix);
    }
    let Some(scheme) = scheme_for(&normalized) else {
        return Err(TaxIdError::UnsupportedCountry(prefix.to_owned()));
    };
    let number = &normalized[2..];
    match (scheme.check)(number) {
        Ok(canonical) => Ok(TaxId {
            normalized: format!("{}{canonical}", scheme.prefix),
            country: scheme.country,
        }),
        Err(Fault::Format) => Err(TaxIdError::Format {
            prefix: scheme.prefix,
            expected: scheme.expected,
            found: normalized.clone(),
        }),
        Err(Fault::Checksum) => Err(TaxIdError::Checksum(normalized)),
    }
}

// ---- helpers ------------------------------------------------------------------------------

/// The digits of `s`, if it is made of ASCII digits only.
fn digits(s: &str) -> Option<Vec<u32>> {
    s.chars().map(|c| c.to_digit(10)).collect()
}

/// `s` as digits if it has one of `lengths`, else a format fault.
fn digits_len(s: &str, lengths: &[usize]) -> Result<Vec<u32>, Fault> {
    match digits(s) {
        Some(d) if lengths.contains(&d.len()) => Ok(d),
        _ => Err(Fault::Format),
    }
}

fn digits_of_len(s: &str, lengths: &[usize]) -> Result<String, Fault> {
    digits_len(s, lengths).map(|_| s.to_owned())
}

fn weighted(digits: &[u32], weights: &[u32]) -> u32 {
    digits.iter().zip(weights).map(|(d, w)| d * w).sum()
}

fn verdict(ok: bool, number: &str) -> Result<String, Fault> {
    if ok {
        Ok(number.to_owned())
    } else {
        Err(Fault::Checksum)
    }
}

/// Luhn: doubling every second digit from the right, the sum is a multiple of 10.
fn luhn_valid(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// ISO 7064 MOD 11,10 over all digits, the last one being the check digit.
fn iso7064_mod11_10_valid(digits: &[u32]) -> bool {
    let Some((&check, body)) = digits.split_last() else {
        return false;
    };
    let mut product = 10;
    for &d in body {
        let mut sum = (d + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (2 * sum) % 11;
    }
    (11 - product) % 10 == check
}

/// ISO 7064 MOD 97-10 over letters (A = 10 .. Z = 35) and digits: valid when the remainder is 1.
fn mod97_10(s: &str) -> Option<u32> {
    let mut rem = 0u32;
    for c in s.chars() {
        let v = c.to_digit(36)?;
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    Some(rem)
}

// ---- countries with check digits -----------------------------------------------------------

/// Austria: U + 8 digits, Luhn-like sum plus 4 (BMF algorithm).
fn at(n: &str) -> Result<String, Fault> {
    let d = n
        .strip_prefix('U')
        .ok_or(Fault::Format)
        .and_then(|rest| digits_len(rest, &[8]))?;
    let cross = |x: u32| x / 10 + x % 10;
    let sum = d[0] + cross(2 * d[1]) + d[2] + cross(2 * d[3]) + d[4] + cross(2 * d[5]) + d[6];
    verdict((10 - (sum + 4) % 10) % 10 == d[7], n)
}

/// Belgium: 10 digits (old 9-digit numbers get a leading 0), last two = 97 - (first 8 mod 97).
fn be(n: &str) -> Result<String, Fault> {
    let n = if n.len() == 9 {
        format!("0{n}")
    } else {
        n.to_owned()
    };
    let d = digits_len(&n, &[10])?;
    if d[0] > 1 {
        return Err(Fault::Format);
    }
    let base: u32 = d[..8].iter().fold(0, |acc, x| acc * 10 + x);
    let check = d[8] * 10 + d[9];
    verdict(97 - base % 97 == check, &n)
}

/// Czech Republic: 8 digits for legal entities (weights 8..2, mod 11), 9 or 10 digits for
/// individuals (birth-number rules, checked for format only).
fn cz(n: &str) -> Result<String, Fault> {
    let d = digits_len(n, &[8, 9, 10])?;
    if d.len() != 8 {
        return Ok(n.to_owned());
    }
    if d[0] == 9 {
        return Err(Fault::Format);
    }
    let c = (11 - weighted(&d[..7], &[8, 7, 6, 5, 4, 3, 2]) % 11) % 11;
    let expected = if c == 0 { 1 } else { c } % 10;
    verdict(expected == d[7], n)
}

/// Germany: 9 digits, ISO 7064 MOD 11,10.
fn de(n: &str) -> Result<String, Fault> {
    let d = digits_len(n, &[9])?;
    if d[0] == 0 {
        return Err(Fault::Format);
    }
    verdict(iso7064_mod11_10_valid(&d), n)
}

/// Denmark: 8 digits, weights 2,7,6,5,4,3,2,1, sum divisible by 11.
fn dk(n: &str) -> Result<String, Fault> {
    let d = digits_len(n, &[8])?;
    if d[0] == 0 {
        return Err(Fault::Format);
    }
    verdict(
        weighted(&d, &[2, 7, 6, 5, 4, 3, 2, 1]).is_multiple_of(11),
        n,
    )
}

/// Greece: 9 digits, weights 256..2 (powers of two), mod 11 mod 10.
fn el(n: &str) -> Result<String, Fault> {
    let d = digits_len(n, &[9])?;
    let sum = weighted(&d[..8], &[256, 128, 64, 32, 16, 8, 4, 2]);
    verdict(sum % 11 % 10 == d[8], n)
}

/// Finland: 8 digits, weights 7,9,10,5,8,4,2,1, sum divisible by 11.
fn fi(n: &str) -> Result<String, Fault> {
    let d = digits_len(n, &[8])?;
    verdict(
        weighted(&d, &[7, 9, 10, 5, 8, 4, 2, 1]).is_multiple_of(11),
        n,
    )
}

/// France: a 2-character key and the 9-digit SIREN. A numeric key must equal
/// (12 + 3 × (SIREN mod 97)) mod 97; alphanumeric keys (newer numbers) are checked for format.
fn fr(n: &str) -> Result<String, Fault> {
    if n.len() != 11 || !n.is_ascii() {
        return Err(Fault::Format);
    }
    let (key, siren) = n.split_at(2);
    let siren_digits = digits_len(siren, &[9])?;
    let key_char_ok =
        |c: char| c.is_ascii_digit() || (c.is_ascii_uppercase() && c != 'I' && c != 'O');
    if !key.chars().all(key_char_ok) {
        return Err(Fault::Format);
    }
    match key.parse::<u32>() {
        Ok(key) => {
            let siren: u32 = siren_digits.iter().fold(0, |acc, x| acc * 10 + x);
            verdict(key == (12 + 3 * (siren % 97)) % 97, n)
        }
        Err(_) => Ok(n.to_owned()),
    }
}

/// United Kingdom (and XI, Northern Ireland): 9 digits (weights 8..2,10,1 mod 97 is 0, or 42 or
/// 55 for numbers issued since 2010), 12 digits (a 9-digit number and a branch), GD/HA + 3 digits.
fn gb(n: &str) -> Result<String, Fault> {
    if let Some(rest) = n.strip_prefix("GD").or_else(|| n.strip_prefix("HA")) {
        let d = digits_len(rest, &[3])?;
        let value = d[0] * 100 + d[1] * 10 + d[2];
        let ok = if n.starts_with("GD") {
            value < 500
        } else {
            value >= 500
        };
        return if ok {
            Ok(n.to_owned())
        } else {
            Err(Fault::Format)
        };
    }
    let d = digits_len(n, &[9, 12])?;
    let sum = weighted(&d[..9], &[8, 7, 6, 5, 4, 3, 2, 10, 1]) % 97;
    let leading = d[0] * 100 + d[1] * 10 + d[2];
    let ok = if leading >= 100 {
        matches!(sum, 0 | 42 | 55)
    } else {
        sum == 0
    };
    verdict(ok, n)
}

/// Italy: 11 digits, Luhn; the first 7 (the company number) are not all zero.
fn it(n: &str) -> Result<String, Fault> {
    let d = digits_len(n, &[11])?;
    if d[..7].iter().all(|&x| x == 0) {
        return Err(Fault::Format);
    }
    verdict(luhn_valid(&d), n)
}

/// Luxembourg: 8 digits, the first 6 mod 89 are the last 2.
fn lu(n: &str) -> Result<String, Fault> {
    let d = digits_len(n, &[8])?;
    let base: u32 = d[..6].iter().fold(0, |acc, x| acc * 10 + x);
    verdict(base % 89 == d[6] * 10 + d[7], n)
}

/// Netherlands: 9 digits, B, 2 digits (not 00). The 9 digits pass the "11-test" (RSIN/BSN,
/// weights 9..2 and -1), or, for sole proprietors since 2020, the whole id passes MOD 97-10.
fn nl(n: &str) -> Result<String, Fault> {
    if n.len() != 12 || !n.is_ascii() {
        return Err(Fault::Format);
    }
    let (number, suffix) = n.split_at(9);
    let d = digits_len(number, &[9])?;
    let branch = suffix.strip_prefix('B').ok_or(Fault::Format)?;
    if digits_len(branch, &[2]).is_err() || branch == "00" {
        return Err(Fault::Format);
    }
    let eleven_test =
        (weighted(&d[..8], &[9, 8, 7, 6, 5, 4, 3, 2]) + 11 * 9 - d[8]).is_multiple_of(11);
    let mod97 = mod97_10(&format!("NL{n}")) == Some(1);
    verdict(eleven_test || mod97, n)
}

/// Poland: 10 digits, weights 6,5,7,2,3,4,5,6,7 mod 11 is the last digit.
fn pl(n: &str) -> Result<String, Fault> {
    let d = digits_len(n, &[10])?;
    verdict(
        weighted(&d[..9], &[6, 5, 7, 2, 3, 4, 5, 6, 7]) % 11 == d[9],
        n,
    )
}

/// Portugal: 9 digits, weights 9..2; check = 11 - sum mod 11, 10 and 11 becoming 0.
fn pt(n: &str) -> Result<String, Fault> {
    let d = digits_len(n, &[9])?;
    let check = 11 - weighted(&d[..8], &[9, 8, 7, 6, 5, 4, 3, 2]) % 11;
    verdict(if check >= 10 { 0 } else { check } == d[8], n)
}

/// Sweden: the 10-digit organisation number (Luhn) followed by 01.
fn se(n: &str) -> Result<String, Fault> {
    let d = digits_len(n, &[12])?;
    if d[10..] != [0, 1] {
        return Err(Fault::Format);
    }
    verdict(luhn_valid(&d[..10]), n)
}

// ---- countries checked for format only -----------------------------------------------------

fn cy(n: &str) -> Result<String, Fault> {
    match n.char_indices().last() {
        Some((i, c)) if c.is_ascii_uppercase() => {
            digits_of_len(&n[..i], &[8]).map(|_| n.to_owned())
        }
        _ => Err(Fault::Format),
    }
}

fn es(n: &str) -> Result<String, Fault> {
    let chars: Vec<char> = n.chars().collect();
    let alnum = |c: &char| c.is_ascii_digit() || c.is_ascii_uppercase();
    let ok = chars.len() == 9
        && alnum(&chars[0])
        && alnum(&chars[8])
        && chars[1..8].iter().all(char::is_ascii_digit);
    if ok {
        Ok(n.to_owned())
    } else {
        Err(Fault::Format)
    }
}

fn ie(n: &str) -> Result<String, Fault> {
    let c: Vec<char> = n.chars().collect();
    let letter_a_w = |c: char| ('A'..='W').contains(&c);
    let ok = match c.len() {
        // 1234567T, 1234567TW, 1234567FA
        8 | 9 if c[..7].iter().all(char::is_ascii_digit) => {
            letter_a_w(c[7]) && (c.len() == 8 || ('A'..='I').contains(&c[8]) || c[8] == 'W')
        }
        // old style: 1A23456T (digit, letter or + or *, 5 digits, letter)
        8 => {
            c[0].is_ascii_digit()
                && (c[1].is_ascii_uppercase() || c[1] == '+' || c[1] == '*')
                && c[2..7].iter().all(char::is_ascii_digit)
                && letter_a_w(c[7])
        }
        _ => false,
    };
    if ok {
        Ok(n.to_owned())
    } else {
        Err(Fault::Format)
    }
}

fn ro(n: &str) -> Result<String, Fault> {
    let d = digits_len(n, &[2, 3, 4, 5, 6, 7, 8, 9, 10])?;
    if d[0] == 0 {
        Err(Fault::Format)
    } else {
        Ok(n.to_owned())
    }
}

fn si(n: &str) -> Result<String, Fault> {
    let d = digits_len(n, &[8])?;
    if d[0] == 0 {
        Err(Fault::Format)
    } else {
        Ok(n.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real VAT ids published by companies (many from python-stdnum's test corpus), written the
    /// way they are found in the wild.
    const VALID: &[&str] = &[
        // the examples of the brief
        "DE136695976",
        "IT00743110157",
        "BE0417497106",
        "ATU13585627",
        "FR40303265045",
        "PL5260250995",
        "DK13585628",
        "PT501964843",
        "NL004495445B01",
        // AT
        "ATU 142 43 102",
        "ATU 15159209",
        "ATU 54300000",
        "ATU46080404",
        "ATU61195628",
        // BE (also the old 9-digit form)
        "BE 0202.239.951",
        "BE 0402 918 402",
        "BE 0897290877",
        "BE 444.503.092",
        "BE0428759497",
        // CZ
        "CZ 25123891",
        "CZ 60 72 77 72",
        "CZ 640903926",
        "CZ 6956220612",
        "CZ00023205",
        "CZ48207926",
        // DE
        "DE - 113866163",
        "DE 221.304.969",
        "DE 813 11 38 75",
        "DE119263782",
        "DE812847601",
        // DK
        "DK 10 50 32 80",
        "DK 2566 2202",
        "DK-27926592",
        "DK10150817",
        // EL
        "EL 039868210",
        "EL 094012834",
        "EL 998386804",
        "EL-082857563",
        "El 800 179 925",
        // ES (format only)
        "ES A-28184661",
        "ES X-5253868-R",
        "ES 54362315K",
        "ESA78109592",
        // FI
        "FI 02459042",
        "FI 0982651-1",
        "FI 20774740",
        "FI-22291240",
        // FR (numeric and alphanumeric keys)
        "FR 04409414364",
        "FR 114 248 728 36",
        "FR 2143 2146 546",
        "FR16000063601",
        "FR K 7399859412",
        "fr 71383076817",
        // GB
        "GB 980 7806 84",
        "GB980780684",
        "XI 980 7806 84",
        "GBGD001",
        "GBHA500",
        // IE (format only)
        "IE 6388047V",
        "IE 8223200u",
        "IE6433435IH",
        "IE8D79739I",
        // IT
        "IT - 01404480202",
        "IT 00 595 000 217",
        "IT02087050155",
        // LU
        "LU 10059929",
        "LU 109 676 28",
        "LU.248.70.640",
        // NL (11-test and the 2020 MOD 97-10 numbers)
        "NL 001241 643 B01",
        "NL 8225.69.759 b01",
        "NL-8197.38.116.B.01",
        "NL001162938B28",
        "NL000099998B57",
        // PL
        "PL 5211355116",
        "PL 584-030-44-72",
        "PL 764-23-05-489",
        "PL5261025421",
        // PT
        "PT 500 019 720",
        "PT 501 964 843",
        "PT-505 856 468",
        "PT503038083",
        // SE
        "SE 556.383.740.901",
        "SE-5562245190-01",
        "SE556043606401",
        // format-only countries
        "BG 175074752",
        "BG7523169263",
        "CY 10246672X",
        "EE 100931558",
        "HR33392005961",
        "HU 10672101",
        "LT 100001354118",
        "LT 119511515",
        "LV 40003521600",
        "MT 1039-6417",
        "RO 1822964",
        "RO-23867797",
        "SI 26808498",
        "SK 2020257679",
    ];

    #[test]
    fn real_ids_are_valid() {
        for raw in VALID {
            assert!(parse(raw).is_ok(), "{raw}: {:?}", parse(raw));
        }
    }

    /// Real ids with one digit changed (python-stdnum's corpus of mangled numbers among them).
    const BAD_CHECKSUM: &[&str] = &[
        "ATU 143 43 102",
        "ATU46080904",
        "BE 0406.139.583",
        "BE697449982",
        "CZ 25557481",
        "CZ 48207726",
        "DE 125014855",
        "DE - 266297673",
        "DK 11 96 56 58",
        "DK10159817",
        "EL 094013834",
        "EL: 094269805",
        "FI 20774741",
        "FR 04409414264",
        "FR 21 326 565 603",
        "GB 802311781",
        "IT00743110158",
        "LU 10059928",
        "NL 123456789B90",
        "PL 5260250996",
        "PT 501964844",
        "SE 123456789101",
    ];

    #[test]
    fn mangled_ids_fail_their_checksum() {
        for raw in BAD_CHECKSUM {
            let raw = raw.replace(':', "");
            assert!(
                matches!(parse(&raw), Err(TaxIdError::Checksum(_))),
                "{raw}: {:?}",
                parse(&raw)
            );
        }
    }

    #[test]
    fn flipping_any_check_digit_of_the_examples_fails() {
        for id in [
            "DE136695976",
            "IT00743110157",
            "BE0417497106",
            "ATU13585627",
            "PL5260250995",
            "DK13585628",
            "PT501964843",
            "FI20774740",
            "LU10059929",
            "EL094012834",
            "SE556043606401",
            "GB980780684",
            "CZ25123891",
        ] {
            // The check digit is the last one except for SE (before the 01 suffix).
            let pos = if id.starts_with("SE") {
                id.len() - 3
            } else {
                id.len() - 1
            };
            let digit = id.as_bytes()[pos] - b'0';
            for other in (0..10u8).filter(|d| *d != digit) {
                let mut mangled = id.as_bytes().to_vec();
                mangled[pos] = b'0' + other;
                let mangled = String::from_utf8(mangled).expect("ascii");
                assert!(parse(&mangled).is_err(), "{mangled} should fail");
            }
        }
        // FR: the key; NL: the ninth digit.
        assert!(matches!(
            parse("FR41303265045"),
            Err(TaxIdError::Checksum(_))
        ));
        assert!(matches!(
            parse("NL004495446B01"),
            Err(TaxIdError::Checksum(_))
        ));
    }

    #[test]
    fn formats_are_checked() {
        for raw in [
            "AT1 142 43 102",
            "ATU 1515B209",
            "ATU 151592092",
            "BE 02A2.239.951",
            "BE 2202239951",
            "DE 011125440",
            "DE 246X595 415",
            "DK 01234567",
            "FR000076090",
            "FR IO303265045",
            "NL 001241643801",
            "NL 009122746B00",
            "NL 82X569759b01",
            "SE 55643359201",
            "SE 556043606402",
            "IT 00000000000",
            "GBGD500",
            "GBHA499",
            "IE 4550C59S",
            "ES B-583784312",
        ] {
            assert!(
                matches!(parse(raw), Err(TaxIdError::Format { .. })),
                "{raw}: {:?}",
                parse(raw)
            );
        }
    }

    #[test]
    fn normalization_and_country() {
        let id = parse(" de 136.695-976 ").expect("valid");
        assert_eq!(id.as_str(), "DE136695976");
        assert_eq!(id.country(), "DE");
        assert_eq!(parse("EL094012834").expect("valid").country(), "GR");
        assert_eq!(parse("XI980780684").expect("valid").country(), "GB");
        assert_eq!(
            parse("BE 444.503.092").expect("valid").as_str(),
            "BE0444503092"
        );
        assert_eq!(country_of("de 000"), Some("DE"));
        assert_eq!(country_of("EL1"), Some("GR"));
        assert_eq!(country_of("US123"), None);
    }

    #[test]
    fn prefix_errors() {
        assert_eq!(parse(" - "), Err(TaxIdError::Empty));
        assert!(matches!(parse("136695976"), Err(TaxIdError::NoPrefix(_))));
        assert!(matches!(parse("D"), Err(TaxIdError::NoPrefix(_))));
        assert!(matches!(parse("ÄÖ123"), Err(TaxIdError::NoPrefix(_))));
        assert_eq!(parse("GR094012834"), Err(TaxIdError::GreekPrefix));
        assert_eq!(
            parse("US123456789"),
            Err(TaxIdError::UnsupportedCountry("US".into()))
        );
        assert_eq!(
            parse("CHE-123.456.789"),
            Err(TaxIdError::UnsupportedCountry("CH".into()))
        );
    }

    #[test]
    fn codes_and_messages() {
        let unsupported = parse("US1").expect_err("unsupported");
        assert_eq!(unsupported.code(), "unsupported-country");
        let checksum = parse("DE136695977").expect_err("checksum");
        assert_eq!(checksum.code(), "invalid-tax-id");
        assert!(checksum.to_string().contains("checksum"), "{checksum}");
        let format = parse("DE1366959").expect_err("format");
        assert_eq!(format.code(), "invalid-tax-id");
        assert!(format.to_string().contains("format"), "{format}");
    }

    #[test]
    fn never_panics_on_odd_input() {
        for raw in [
            "",
            "X",
            "DEÄ",
            "FRÄÖÜ1234567",
            "NLÄ23456789B01",
            "CY1234567Ä",
            "IE123456ÄA",
            "ES12345678Ä",
            "ATUÄ",
        ] {
            let _ = parse(raw);
        }
    }
}
