//! Hand-verified cases for each detector. Card numbers and IBANs were checked with an
//! independent implementation, python-stdnum 2.x: `stdnum.luhn.is_valid(digits)` and
//! `stdnum.iban.is_valid(text)`; the value it gives is written beside each.

use super::*;

fn all() -> PiiDetectors {
    PiiDetectors {
        builtin: PiiKind::ALL.to_vec(),
        custom: Vec::new(),
        allow: Vec::new(),
    }
}

/// The findings of every built-in detector in `text`, as `kind: masked`.
#[track_caller]
fn check(text: &str, expected: &[&str]) {
    let got: Vec<String> = find(&all(), text)
        .into_iter()
        .map(|f| format!("{}: {}", f.kind, f.masked))
        .collect();
    assert_eq!(got, expected, "in {text:?}");
}

#[test]
fn emails_but_not_email_like_code() {
    check("Write to jane.doe@example.com for help.", &["email: j***@example.com"]);
    check("mailto:support@trailhead.co.uk", &["email: s***@trailhead.co.uk"]);
    check(
        "<a href=\"mailto:x_y+tag@mail.example.org\">",
        &["email: x***@mail.example.org"],
    );
    // A decorator has no local part; an SSH remote continues with `:path`; URL credentials
    // are not an address; neither is a package pinned to a version or an image digest.
    check("@app.route(\"/refund\")\ndef refund(): ...", &[]);
    check("git clone git@github.com:trailhead/prompts.git", &[]);
    check(
        "curl https://deploy@example.com/hooks and https://user:pw@example.com",
        &[],
    );
    check("npm install lodash@4.17.21 and docker pull redis@sha256:abc123", &[]);
    check("f\"{user}@{domain}\" is built at run time", &[]);
    check("no TLD: admin@localhost", &[]);
    // After a non-breaking space (two bytes in UTF-8).
    check("Mail\u{a0}jane@example.com", &["email: j***@example.com"]);
    // Followed by a colon and a space is still an address at the end of a clause.
    check("Ask jo@example.com: they know.", &["email: j***@example.com"]);
}

#[test]
fn phone_numbers_international_and_national() {
    check("Call +1 (415) 555-2671 today", &["phone: +* (***) ***-**71"]);
    check("UK: +44 20 7946 0958.", &["phone: +** ** **** **58"]);
    check("Berlin +49 (0)30 1234567", &["phone: +** (*)** *****67"]);
    check("Paris +33 1 23 45 67 89", &["phone: +** * ** ** ** 89"]);
    check(
        "US (415) 555-2671 or 415.555.2671",
        &["phone: (***) ***-**71", "phone: ***.***.**71"],
    );
    check("London 020 7946 0958", &["phone: *** **** **58"]);
    check("Paris 01 23 45 67 89", &["phone: ** ** ** ** 89"]);
}

#[test]
fn dates_prices_order_numbers_and_other_numbers_are_not_phones() {
    for text in [
        "Delivered on 2024-01-15 at 10:30",
        "between 15.01.2024 and 01/02/2024",
        "2024-01-15 10:30:00",
        "It costs $1,299.99 or 1.299,99 €",
        "Revenue was 1 234 567 890 last year, or 1.234.567.890",
        "Order #4155552671 shipped",
        "Order number 4155552671 shipped",
        "Your order ORD-2024-000123 is on its way",
        "Tracking 1234-5678-9012 (12 digits)",
        "ISBN 978-3-16-148410-0",
        "Server 192.168.100.20 answered",
        "Call 555-2671 (a 7-digit local number)",
        "Ratio 415-555-2671% is not a number anyone calls",
        "Years 2019 2020 2021",
        "Version 1.2.3 and zip 80302-1234",
    ] {
        let phones: Vec<&str> = phones(text);
        assert!(phones.is_empty(), "{text:?} gave {phones:?}");
    }
}

#[test]
fn cards_with_a_valid_luhn_digit() {
    // stdnum.luhn.is_valid("4111111111111111") == True (Visa test number)
    check("Card: 4111 1111 1111 1111", &["card: **** **** **** 1111"]);
    // stdnum.luhn.is_valid("5555555555554444") == True (Mastercard test number)
    check("5555-5555-5555-4444 expires 04/29", &["card: ****-****-****-4444"]);
    // stdnum.luhn.is_valid("378282246310005") == True (American Express, 4-6-5)
    check("Amex 3782 822463 10005", &["card: **** ****** *0005"]);
    // stdnum.luhn.is_valid("6011111111111117") == True (Discover, no separators)
    check("6011111111111117", &["card: ************1117"]);
}

#[test]
fn card_length_numbers_failing_luhn_are_not_cards() {
    // stdnum.luhn.is_valid("4111111111111112") == False
    check("Card: 4111 1111 1111 1112", &[]);
    // stdnum.luhn.is_valid("4929123456789012") == False
    check("4929-1234-5678-9012", &[]);
    // Luhn-valid, but the issuer digit is 1: an order number, not a card.
    // stdnum.luhn.is_valid("1234567812345670") == True
    assert!(luhn_holds("1234567812345670"));
    check("Order 1234567812345670", &[]);
    // Mixed separators, or part of a longer number.
    check("4111 1111-1111 1111", &[]);
    check("ref 4111 1111 1111 1111 2222", &[]);
}

#[test]
fn ibans_with_a_valid_checksum() {
    // stdnum.iban.is_valid("DE89 3704 0044 0532 0130 00") == True
    check(
        "IBAN DE89 3704 0044 0532 0130 00.",
        &["iban: DE** **** **** **** **30 00"],
    );
    // stdnum.iban.is_valid("GB82 WEST 1234 5698 7654 32") == True
    check(
        "Pay to GB82 WEST 1234 5698 7654 32 today",
        &["iban: GB** **** **** **** **54 32"],
    );
    // stdnum.iban.is_valid("FR14 2004 1010 0505 0001 3M02 606") == True; unspaced too
    check("FR1420041010050500013M02606", &["iban: FR*********************2606"]);
    // stdnum.iban.is_valid("NL91 ABNA 0417 1643 00") == True; lower case is still an IBAN
    check("nl91 abna 0417 1643 00", &["iban: nl** **** **** **43 00"]);
}

#[test]
fn ibans_with_a_wrong_checksum_or_length_are_not_ibans() {
    // stdnum.iban.is_valid("DE88 3704 0044 0532 0130 00") == False
    check("IBAN DE88 3704 0044 0532 0130 00", &[]);
    // stdnum.iban.is_valid("GB82 WEST 1234 5698 7654 33") == False
    check("GB82 WEST 1234 5698 7654 33", &[]);
    // A valid German IBAN with a digit too many is not one.
    check("DE89 3704 0044 0532 0130 001", &[]);
    // An unknown country code.
    check("ZZ89 3704 0044 0532 0130 00", &[]);
    assert!(iban_checksum_holds("CH93 0076 2011 6238 5295 7"));
    assert!(!iban_checksum_holds("CH94 0076 2011 6238 5295 7"));
}

#[test]
fn configured_patterns_and_a_choice_of_kinds() {
    let detectors = PiiDetectors {
        builtin: vec![PiiKind::Email],
        custom: vec![("us-ssn".to_owned(), Regex::new(r"\b\d{3}-\d{2}-\d{4}\b").unwrap())],
        allow: Vec::new(),
    };
    let found = find(
        &detectors,
        "SSN 123-45-6789, card 4111 1111 1111 1111, mail a.b@example.com",
    );
    assert_eq!(
        found,
        vec![
            Finding {
                kind: "email".to_owned(),
                masked: "a***@example.com".to_owned()
            },
            Finding {
                kind: "us-ssn".to_owned(),
                masked: "***-**-**89".to_owned()
            },
        ]
    );
}

#[test]
fn masks_never_show_the_data() {
    assert_eq!(mask_email("jane.doe@example.com"), "j***@example.com");
    assert_eq!(mask_digits("+1 (415) 555-2671", 2), "+* (***) ***-**71");
    assert_eq!(mask_alphanumerics("AB12", 2), "****", "short matches are masked whole");
}

#[test]
fn allowed_addresses_and_numbers_are_no_leak_however_written() {
    let detectors = PiiDetectors {
        allow: vec![
            "privacy@trailheadoutfitters.com".to_owned(),
            "1-800-555-0142".to_owned(),
        ],
        ..all()
    };
    let found = find(
        &detectors,
        "Mail Privacy@TrailheadOutfitters.com or call +1 (800) 555-0142; Dana is on +1 (720) 555-0193.",
    );
    assert_eq!(
        found,
        vec![Finding {
            kind: "phone".to_owned(),
            masked: "+* (***) ***-**93".to_owned()
        }]
    );
}

#[test]
fn mask_replaces_each_finding_in_place_and_keeps_the_rest() {
    let text = "Call Dana on +1 (415) 555-2671 or mail dana.r@example.com; card 4111 1111 1111 1111.";
    assert_eq!(
        mask(&all(), text),
        "Call Dana on +* (***) ***-**71 or mail d***@example.com; card **** **** **** 1111."
    );
    // Nothing found: the text itself, not a copy.
    assert!(matches!(mask(&all(), "No personal data here."), Cow::Borrowed(_)));
    // What the allow list names stays readable.
    let allowing = PiiDetectors {
        allow: vec!["help@example.com".to_owned()],
        ..all()
    };
    assert_eq!(
        mask(&allowing, "Write to help@example.com, not jo@example.com."),
        "Write to help@example.com, not j***@example.com."
    );
}

#[test]
fn mask_of_a_configured_pattern_keeps_only_its_last_characters() {
    let detectors = PiiDetectors {
        builtin: Vec::new(),
        custom: vec![(
            "ssn".to_owned(),
            Regex::new(r"\b\d{3}-\d{2}-\d{4}\b").expect("a valid regex"),
        )],
        allow: Vec::new(),
    };
    assert_eq!(mask(&detectors, "SSN 123-45-6789 on file"), "SSN ***-**-**89 on file");
}

/// Model output is anything: text that matched a detector's shape but broke an assumption of
/// its checks (a parenthesis closed before it opens, digits outside ASCII, letters whose
/// lowercase or uppercase is ASCII but which are not) panicked, and a panic in scoring lost
/// the whole run after every call was paid for.
#[test]
fn text_shaped_like_personal_data_never_panics() {
    for text in [
        "Call 415) 555-(2671 today",
        "注文番号 ４１１１１１１１１１１１１１１１",
        "order ４１１１ １１１１ １１１１ １１１１ and 4111 1111 1111 1111",
        "\u{212A}A12345678901234",
        "\u{17F}E89370400440532013000",
        "(+44) )20( 7946 0958",
    ] {
        let _ = find(&all(), text);
        let _ = mask(&all(), text);
    }
    // Full-width digits are not a card number; the ASCII one beside them still is.
    check(
        "order ４１１１ １１１１ １１１１ １１１１ and 4111 1111 1111 1111",
        &["card: **** **** **** 1111"],
    );
}

proptest::proptest! {
    #[test]
    fn any_text_is_scanned_without_panicking(text in "[0-9０-９()+\\- .a-zA-Z\u{212A}\u{17F}@_/]{0,60}") {
        let _ = find(&all(), &text);
        let masked = mask(&all(), &text);
        // Masking replaces findings; it never grows the text past every finding's mask.
        proptest::prop_assert!(masked.len() <= text.len() + 64 * find(&all(), &text).len());
    }
}
