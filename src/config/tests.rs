use super::parse::*;
use super::*;

fn has(words: &ErrnoSet, e: usize) -> bool {
    set_contains(words, e)
}

/// Every event, with its origin, in a readable form.
#[derive(Default)]
struct Recorder(Vec<String>);

impl Sink for Recorder {
    fn event(&mut self, origin: Origin<'_>, event: Event<'_>) {
        let at = match origin {
            Origin::ConfigLine(n) => format!("line {n}"),
            Origin::Environment(name) => String::from_utf8_lossy(name).into_owned(),
        };
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let what = match event {
            Event::Applied { key, value } => format!("{} = {}", key.name(), text(value)),
            Event::InvalidValue { key, value } => {
                format!("invalid {} '{}'", key.name(), text(value))
            }
            Event::UnknownErrno { word } => format!("unknown errno '{}'", text(word)),
            Event::UnknownKey { key } => format!("unknown key '{}'", text(key)),
            Event::NotASetting { text: t } => format!("not a setting '{}'", text(t)),
            Event::LineTooLong => "line too long".to_string(),
        };
        self.0.push(format!("{at}: {what}"));
    }
}

/// Parses `text` as a file, handing it to the parser `chunk` bytes per read.
fn parse_file(text: &[u8], chunk: usize) -> (Result<(), FileProblem>, Settings, Vec<String>) {
    let mut settings = Settings::NONE;
    let mut events = Recorder::default();
    let mut at = 0;
    let result = parse_config(
        |buf: &mut [u8]| {
            let n = chunk.min(buf.len()).min(text.len() - at);
            buf[..n].copy_from_slice(&text[at..at + n]);
            at += n;
            Ok(n)
        },
        &mut settings,
        &mut events,
    );
    (result, settings, events.0)
}

fn log_path(settings: &Settings) -> Option<Vec<u8>> {
    match settings.log {
        Some(LogSetting::File(p)) => Some(p.as_bytes().to_vec()),
        _ => None,
    }
}

#[test]
fn default_set() {
    for e in [95, 524, 18, 38, 1, 5, 22, 2, 13, 11] {
        assert!(falls_back_on(Errno(e)), "{e}");
    }
    for e in [0, 9, 14, 21, 27, 28, 75, 4095, -1] {
        assert!(!falls_back_on(Errno(e)), "{e}");
    }
}

#[test]
fn errno_list_parsing() {
    let mut events = Recorder::default();
    let origin = Origin::ConfigLine(1);
    let w = parse_errnos(b"EXDEV, 95:enotsupp  eio", origin, &mut events).unwrap();
    assert!(has(&w, 18) && has(&w, 95) && has(&w, 524) && has(&w, 5));
    assert!(!has(&w, 38));
    assert!(events.0.is_empty());
    let w = parse_errnos(b"ENOTSUP,bogus", origin, &mut events).unwrap();
    assert!(has(&w, 95));
    assert_eq!(events.0, ["line 1: unknown errno 'bogus'"]);
    assert_eq!(
        parse_errnos(b"none", origin, &mut Quiet),
        Some([0; SET_WORDS])
    );
    assert_eq!(
        parse_errnos(b"NONE", origin, &mut Quiet),
        Some([0; SET_WORDS])
    );
    // Empty (an unset shell variable) is invalid: it must not switch the fallback off.
    for empty in [&b""[..], b"  ", b",", b" : , "] {
        assert_eq!(parse_errnos(empty, origin, &mut Quiet), None, "{empty:?}");
    }
    assert_eq!(
        parse_errnos(b"bogus,99999999999999999999", origin, &mut Quiet),
        None
    );
    assert_eq!(parse_errnos(b"0", origin, &mut Quiet), None);
    assert_eq!(parse_errnos(b"1024", origin, &mut Quiet), None);
}

#[test]
fn config_file_parsing() {
    let text = b"# cfrfix\n  MODE = always # trailing comment\nengine=rw\nsparse = off\n\
                 errnos = EXDEV EIO\nlog = /var/log/cfrfix.log\nbogus = 1\nmode = nonsense\n";
    let (result, st, events) = parse_file(text, 4096);
    assert_eq!(result, Ok(()));
    assert_eq!(st.mode, Some(Mode::Always));
    assert_eq!(st.engine, Some(EngineChoice::Rw));
    assert_eq!(st.sparse, Some(false));
    let w = st.errnos.unwrap();
    assert!(has(&w, 18) && has(&w, 5) && !has(&w, 95));
    assert_eq!(log_path(&st).as_deref(), Some(&b"/var/log/cfrfix.log"[..]));
    assert_eq!(
        events,
        [
            "line 2: mode = always",
            "line 3: engine = rw",
            "line 4: sparse = off",
            "line 5: errnos = EXDEV EIO",
            "line 6: log = /var/log/cfrfix.log",
            "line 7: unknown key 'bogus'",
            "line 8: invalid mode 'nonsense'",
        ]
    );
}

#[test]
fn a_relative_log_path_is_refused_and_the_earlier_setting_stays() {
    let (_, st, events) = parse_file(b"log = /var/log/a\nlog = relative.log\n", 4096);
    assert_eq!(log_path(&st).as_deref(), Some(&b"/var/log/a"[..]));
    assert_eq!(events[1], "line 2: invalid log 'relative.log'");
}

#[test]
fn values_are_case_insensitive_and_trimmed() {
    for (value, mode) in [
        (&b"OFF"[..], Mode::Off),
        (b" off ", Mode::Off),
        (b"\toff", Mode::Off),
        (b"Always", Mode::Always),
        (b"AUTO", Mode::Auto),
        (b"", Mode::Auto),
    ] {
        assert_eq!(parse_mode(value.trim_ascii()), Some(mode), "{value:?}");
        let mut st = Settings::NONE;
        st.apply(b"mode", value, Origin::ConfigLine(1), &mut Quiet);
        assert_eq!(st.mode, Some(mode), "{value:?}");
    }
    assert_eq!(parse_engine(b"SPLICE"), Some(EngineChoice::Splice));
    assert_eq!(parse_engine(b"Rw"), Some(EngineChoice::Rw));
    assert_eq!(parse_sparse(b"OFF"), Some(false));
    assert!(matches!(parse_log(b"STDERR"), Some(LogSetting::Stderr)));
    assert!(matches!(parse_log(b"Off"), Some(LogSetting::Silent)));
    // A path keeps its case.
    match parse_log(b"/Var/Log/X") {
        Some(LogSetting::File(p)) => assert_eq!(p.as_bytes(), b"/Var/Log/X"),
        _ => panic!("a path"),
    }
    // Still invalid: other words, quotes.
    for value in [&b"banana"[..], b"\"off\"", b"'off'", b"of f"] {
        assert_eq!(parse_mode(value), None, "{value:?}");
    }
}

#[test]
fn environment_entries() {
    let mut st = Settings::NONE;
    let mut events = Recorder::default();
    for entry in [
        &b"PATH=/bin"[..],
        b"CFRFIX_MODE= OFF ",
        b"CFRFIX_engine=rw",
        b"CFRFIX_MOD=off",
        b"CFRFIX_SPARSE=maybe",
        b"CFRFIX_NOEQUALS",
    ] {
        st.apply_environment_entry(entry, &mut events);
    }
    assert_eq!(st.mode, Some(Mode::Off));
    assert_eq!(st.engine, Some(EngineChoice::Rw));
    assert_eq!(st.sparse, None);
    assert_eq!(
        events.0,
        [
            "CFRFIX_MODE: mode = OFF",
            "CFRFIX_engine: engine = rw",
            "CFRFIX_MOD: unknown key 'MOD'",
            "CFRFIX_SPARSE: invalid sparse 'maybe'",
        ]
    );
}

#[test]
fn colon_lines_are_settings_and_other_lines_are_reported() {
    let text = b"mode: off\nerrnos: EXDEV:EIO\nlog = /a:b\njust some words\n  # only a comment\n\n";
    let (result, st, events) = parse_file(text, 4096);
    assert_eq!(result, Ok(()));
    assert_eq!(st.mode, Some(Mode::Off));
    let w = st.errnos.unwrap();
    assert!(has(&w, 18) && has(&w, 5) && !has(&w, 95));
    assert_eq!(log_path(&st).as_deref(), Some(&b"/a:b"[..]));
    assert_eq!(events[3], "line 4: not a setting 'just some words'");
    assert_eq!(events.len(), 4);
}

#[test]
fn a_file_is_read_whole_in_any_chunking() {
    // Settings far past the old 4096-byte buffer, a CRLF line, no final newline.
    let mut text = Vec::new();
    for i in 0..400 {
        text.extend_from_slice(format!("# comment line {i} padding padding padding\n").as_bytes());
    }
    text.extend_from_slice(b"mode = always\r\nsparse = off");
    assert!(text.len() > 3 * LINE_MAX);
    for chunk in [1, 7, 100, 4095, 4096, 100_000] {
        let (result, st, events) = parse_file(&text, chunk);
        assert_eq!(result, Ok(()), "chunk {chunk}");
        assert_eq!(st.mode, Some(Mode::Always), "chunk {chunk}");
        assert_eq!(st.sparse, Some(false), "chunk {chunk}");
        assert_eq!(
            events,
            ["line 401: mode = always", "line 402: sparse = off"],
            "chunk {chunk}"
        );
    }
}

#[test]
fn a_file_longer_than_the_limit_is_refused() {
    let mut text = b"mode = off\n".to_vec();
    text.resize(CONFIG_MAX_BYTES, b'\n');
    let (result, st, _) = parse_file(&text, 4096);
    assert_eq!(result, Ok(()));
    assert_eq!(st.mode, Some(Mode::Off));
    text.push(b'\n');
    for chunk in [1000, 4096] {
        let (result, _, _) = parse_file(&text, chunk);
        assert_eq!(result, Err(FileProblem::TooLong), "chunk {chunk}");
    }
}

#[test]
fn an_overlong_line_is_ignored_and_counted() {
    let mut text = b"mode = always\nlog = /".to_vec();
    text.extend(std::iter::repeat_n(b'x', 3 * LINE_MAX));
    text.extend_from_slice(b"\nsparse = off\nengine = rw");
    for chunk in [1, 999, 4096, 100_000] {
        let (result, st, events) = parse_file(&text, chunk);
        assert_eq!(result, Ok(()), "chunk {chunk}");
        assert!(st.log.is_none(), "chunk {chunk}");
        assert_eq!(
            events,
            [
                "line 1: mode = always",
                "line 2: line too long",
                "line 3: sparse = off",
                "line 4: engine = rw",
            ],
            "chunk {chunk}"
        );
    }
    // A line of exactly LINE_MAX - 1 bytes plus its newline still fits.
    let mut text = b"log = /".to_vec();
    text.resize(LINE_MAX - 1, b'y');
    text.push(b'\n');
    let (_, st, events) = parse_file(&text, 4096);
    assert!(
        log_path(&st).is_none(),
        "too long for a log path: {events:?}"
    );
    assert!(events[0].starts_with("line 1: invalid log"), "{events:?}");
}

#[test]
fn a_read_error_refuses_the_file_and_eintr_is_retried() {
    let mut calls = 0;
    let mut st = Settings::NONE;
    let result = parse_config(
        |buf: &mut [u8]| {
            calls += 1;
            match calls {
                1 => Err(libc::EINTR),
                2 => {
                    buf[..11].copy_from_slice(b"mode = off\n");
                    Ok(11)
                }
                _ => Err(libc::EIO),
            }
        },
        &mut st,
        &mut Quiet,
    );
    assert_eq!(result, Err(FileProblem::ReadFailed { errno: libc::EIO }));
}

#[test]
fn trust_rules() {
    let regular = libc::S_IFREG;
    assert_eq!(untrusted(0, regular | 0o644), None);
    assert_eq!(untrusted(0, regular | 0o600), None);
    assert_eq!(
        untrusted(0, regular | 0o664),
        Some(FileProblem::WritableByOthers { mode: 0o664 })
    );
    assert_eq!(
        untrusted(0, regular | 0o646),
        Some(FileProblem::WritableByOthers { mode: 0o646 })
    );
    assert_eq!(
        untrusted(1000, regular | 0o644),
        Some(FileProblem::NotOwnedByRoot { uid: 1000 })
    );
    assert_eq!(
        untrusted(0, libc::S_IFDIR | 0o755),
        Some(FileProblem::NotRegular {
            file_type: libc::S_IFDIR
        })
    );
}

#[test]
fn later_settings_override_earlier_ones() {
    let (_, mut file, _) = parse_file(b"mode = off\nlog = stderr\nsparse = off\n", 4096);
    let mut environment = Settings::NONE;
    environment.apply_environment_entry(b"CFRFIX_MODE=always", &mut Quiet);
    environment.apply_environment_entry(b"CFRFIX_LOG=off", &mut Quiet);
    file.overridden_by(&environment);
    assert_eq!(file.mode, Some(Mode::Always));
    assert!(matches!(file.log, Some(LogSetting::Silent)));
    assert_eq!(file.sparse, Some(false));
}

#[test]
fn an_empty_errnos_value_is_invalid_and_the_earlier_set_stays() {
    let (_, st, events) = parse_file(b"errnos = EXDEV\nerrnos =\nerrnos = \t\n", 4096);
    let w = st.errnos.unwrap();
    assert!(has(&w, 18) && !has(&w, 95), "the file's first set stays");
    assert_eq!(
        events,
        [
            "line 1: errnos = EXDEV",
            "line 2: invalid errnos ''",
            "line 3: invalid errnos ''",
        ]
    );
    let mut st = Settings::NONE;
    let mut events = Recorder::default();
    st.apply_environment_entry(b"CFRFIX_ERRNOS=", &mut events);
    assert_eq!(st.errnos, None);
    assert_eq!(events.0, ["CFRFIX_ERRNOS: invalid errnos ''"]);
    // `none` is the deliberate way to have no fallback.
    st.apply_environment_entry(b"CFRFIX_ERRNOS=None", &mut Quiet);
    assert_eq!(st.errnos, Some([0; SET_WORDS]));
}

#[test]
fn a_hash_starts_a_comment_only_at_the_start_or_after_whitespace() {
    let text =
        b"log = /var/tmp/x#1.log\n#mode = off\n  # sparse = off\nengine = rw# not a comment\n\
                 mode = always\t# a comment\nerrnos = EXDEV #EIO\n";
    let (result, st, events) = parse_file(text, 4096);
    assert_eq!(result, Ok(()));
    assert_eq!(log_path(&st).as_deref(), Some(&b"/var/tmp/x#1.log"[..]));
    assert_eq!(st.sparse, None);
    assert_eq!(st.engine, None);
    assert_eq!(st.mode, Some(Mode::Always));
    let w = st.errnos.unwrap();
    assert!(has(&w, 18) && !has(&w, 5));
    assert_eq!(
        events,
        [
            "line 1: log = /var/tmp/x#1.log",
            "line 4: invalid engine 'rw# not a comment'",
            "line 5: mode = always",
            "line 6: errnos = EXDEV",
        ]
    );
    assert_eq!(without_comment(b"# all"), b"");
    assert_eq!(without_comment(b"a=b#c"), b"a=b#c");
    assert_eq!(without_comment(b"a=b\r#c"), b"a=b\r");
}
