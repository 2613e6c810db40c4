//! `dory list`: runc's table, `--format json`, `-q`.

use super::args::{flag, FlagSpec};
use super::{parse_or_usage, Global};
use crate::container::state;

pub(super) const LIST_FLAGS: &[FlagSpec] = &[
    flag("format", Some('f'), true),
    flag("quiet", Some('q'), false),
];

pub fn cmd_list(g: &Global, argv: &[String]) -> i32 {
    let p = match parse_or_usage("list", argv, LIST_FLAGS) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let format = p.get("format").unwrap_or("table");
    if format != "table" && format != "json" {
        log_error!("dory list: invalid format option \"{format}\" (table or json)");
        return 1;
    }
    let mut rows: Vec<(String, state::Loaded)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&g.root) {
        for e in entries.flatten() {
            if let Ok(l) = state::Loaded::read(&e.path()) {
                rows.push((e.file_name().to_string_lossy().into_owned(), l));
            }
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut states = Vec::new();
    for (_, l) in &rows {
        let mut s = l.state();
        if !state::is_running(&s) {
            s.status = "stopped";
            s.pid = 0;
        }
        states.push(s);
    }
    if p.has("quiet") {
        for s in &states {
            println!("{}", s.id);
        }
        return 0;
    }
    if format == "json" {
        let items: Vec<String> = states.iter().map(|s| s.to_json(false)).collect();
        println!("[{}]", items.join(","));
        return 0;
    }
    print!("{}", table(&states));
    0
}

/// runc's layout: columns padded to the widest cell plus 3, at least 12 wide.
fn table(states: &[state::State<'_>]) -> String {
    let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];
    let cells: Vec<[String; 6]> = states
        .iter()
        .map(|s| {
            [
                s.id.to_string(),
                s.pid.to_string(),
                s.status.to_string(),
                s.bundle.to_string(),
                s.created.to_string(),
                s.owner.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.len());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[&str]| {
        let mut out = String::new();
        for (i, (c, w)) in row.iter().zip(widths).enumerate() {
            out.push_str(c);
            if i + 1 < row.len() {
                let pad = (w + 3).max(12) - c.chars().count();
                out.push_str(&" ".repeat(pad));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(&header);
    for row in &cells {
        let refs: Vec<&str> = row.iter().map(String::as_str).collect();
        out.push_str(&line(&refs));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_runc_layout() {
        let s = state::State {
            id: "test1",
            pid: 4242,
            status: "running",
            bundle: "/root/bundle",
            rootfs: "/root/bundle/rootfs",
            created: "2026-11-30T15:04:56.000000123Z",
            owner: "root",
            start_time: 1,
            cgroup: "/dory/test1",
        };
        let t = table(&[s]);
        let mut lines = t.lines();
        assert_eq!(
            lines.next().unwrap(),
            "ID          PID         STATUS      BUNDLE         CREATED                          OWNER"
        );
        assert_eq!(
            lines.next().unwrap(),
            "test1       4242        running     /root/bundle   2026-11-30T15:04:56.000000123Z   root"
        );
    }
}
