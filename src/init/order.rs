//! Start order of services: list order, except that a service starts after every service
//! named in its `after`. Oneshots always run first (in list order), so naming one in
//! `after` is allowed and already satisfied. Shutdown uses the reverse of this order.

use heapless::Vec;

use super::board::{Board, Error, Kind, MAX_CONTAINERS};

/// Indexes (into `board.containers`) of the services in start order.
pub type Order = Vec<usize, MAX_CONTAINERS>;

fn index_of(board: &Board<'_>, id: &str) -> Option<usize> {
    board.containers.iter().position(|c| c.id == id)
}

/// Stable topological order of the services; errors name unknown ids and cycles.
pub fn start_order(board: &Board<'_>) -> Result<Order, Error> {
    // Unknown names first, so a typo is not reported as a cycle.
    for (i, c) in board.containers.iter().enumerate() {
        for (j, dep) in c.after.iter().enumerate() {
            if index_of(board, dep).is_none() {
                return Err(Error::Invalid {
                    field: format!("containers[{i}].after[{j}]"),
                    problem: format!("unknown container \"{dep}\""),
                });
            }
        }
    }
    let services = || {
        board
            .containers
            .iter()
            .enumerate()
            .filter(|(_, c)| c.kind == Kind::Service)
    };
    let mut placed = [false; MAX_CONTAINERS];
    let is_ready = |placed: &[bool; MAX_CONTAINERS], i: usize| -> bool {
        board.containers.get(i).is_some_and(|c| {
            c.after.iter().all(|dep| match index_of(board, dep) {
                Some(d) => {
                    board
                        .containers
                        .get(d)
                        .is_some_and(|dc| dc.kind == Kind::Oneshot)
                        || placed.get(d).copied().unwrap_or(false)
                }
                None => false,
            })
        })
    };
    let mut order = Order::new();
    let total = services().count();
    while order.len() < total {
        let next = services()
            .map(|(i, _)| i)
            .find(|&i| !placed.get(i).copied().unwrap_or(true) && is_ready(&placed, i));
        match next {
            Some(i) => {
                if let Some(p) = placed.get_mut(i) {
                    *p = true;
                }
                // At most MAX_CONTAINERS services exist.
                order.push(i).map_err(|_| Error::TooMany {
                    field: "containers".into(),
                    limit: MAX_CONTAINERS,
                    name: "MAX_CONTAINERS",
                })?;
            }
            None => return Err(cycle_error(board, &placed)),
        }
    }
    Ok(order)
}

/// Follows unplaced dependencies from the first unplaced service until a name repeats.
fn cycle_error(board: &Board<'_>, placed: &[bool; MAX_CONTAINERS]) -> Error {
    let unplaced = |i: usize| {
        board
            .containers
            .get(i)
            .is_some_and(|c| c.kind == Kind::Service)
            && !placed.get(i).copied().unwrap_or(true)
    };
    let start = (0..board.containers.len())
        .find(|&i| unplaced(i))
        .unwrap_or(0);
    let mut path: Vec<usize, { MAX_CONTAINERS + 1 }> = Vec::new();
    let mut cur = start;
    loop {
        if let Some(pos) = path.iter().position(|&p| p == cur) {
            let mut text = String::new();
            for &p in path.iter().skip(pos) {
                text.push_str(board.containers.get(p).map_or("?", |c| c.id));
                text.push_str(" -> ");
            }
            text.push_str(board.containers.get(cur).map_or("?", |c| c.id));
            return Error::Invalid {
                field: format!("containers[{cur}].after"),
                problem: format!("dependency cycle: {text}"),
            };
        }
        if path.push(cur).is_err() {
            break;
        }
        let next = board.containers.get(cur).and_then(|c| {
            c.after
                .iter()
                .filter_map(|d| index_of(board, d))
                .find(|&d| unplaced(d))
        });
        match next {
            Some(n) => cur = n,
            None => break,
        }
    }
    Error::Invalid {
        field: "containers".into(),
        problem: "dependency cycle".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::board::parse;
    use super::*;

    fn ids(text: &str) -> std::vec::Vec<String> {
        let b = parse(text.as_bytes()).unwrap();
        start_order(&b)
            .unwrap()
            .iter()
            .map(|&i| b.containers[i].id.to_string())
            .collect()
    }

    #[test]
    fn list_order_honouring_after() {
        let t = r#"{"containers":[
            {"id":"a","bundle":"/a","after":["c"]},
            {"id":"o","bundle":"/o","kind":"oneshot"},
            {"id":"b","bundle":"/b"},
            {"id":"c","bundle":"/c","after":["o"]},
            {"id":"d","bundle":"/d","after":["a","b"]}]}"#;
        assert_eq!(ids(t), ["b", "c", "a", "d"]);
        let t = r#"{"containers":[{"id":"x","bundle":"/x"},{"id":"y","bundle":"/y"}]}"#;
        assert_eq!(ids(t), ["x", "y"]);
    }

    #[test]
    fn cycles_are_named() {
        let t = r#"{"containers":[
            {"id":"a","bundle":"/a","after":["b"]},
            {"id":"b","bundle":"/b","after":["c"]},
            {"id":"c","bundle":"/c","after":["a"]},
            {"id":"d","bundle":"/d"}]}"#;
        let e = parse(t.as_bytes()).unwrap_err().to_string();
        assert_eq!(e, "containers[0].after: dependency cycle: a -> b -> c -> a");
        let t = r#"{"containers":[{"id":"a","bundle":"/a","after":["a"]}]}"#;
        let e = parse(t.as_bytes()).unwrap_err().to_string();
        assert_eq!(e, "containers[0].after: dependency cycle: a -> a");
    }
}
