//! The pipeline DAG: pure structure built from a validated manifest. No IO.

use std::collections::HashMap;

use crate::manifest::Manifest;

/// Nodes by index, with their edges and roles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Graph {
    ids: Vec<String>,
    successors: Vec<Vec<usize>>,
    predecessors: Vec<Vec<usize>>,
    emits_to_client: Vec<bool>,
}

/// Why a manifest's connections do not form a DAG. `validate` reports these in detail; this
/// exists so [`Graph::from_manifest`] never panics on an unvalidated manifest.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// A connection names a node that does not exist.
    #[error("connection {from} -> {to} names an unknown node")]
    UnknownEndpoint {
        /// Producing side.
        from: String,
        /// Consuming side.
        to: String,
    },
    /// The connections contain a cycle through these nodes.
    #[error("cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
}

impl Graph {
    /// Builds the graph. Duplicate edges are merged (validation reports them separately).
    ///
    /// # Errors
    /// Fails on unknown endpoints and cycles.
    pub fn from_manifest(manifest: &Manifest) -> Result<Self, GraphError> {
        let ids: Vec<String> = manifest.nodes.iter().map(|n| n.id.clone()).collect();
        let index: HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let mut successors = vec![Vec::new(); ids.len()];
        let mut predecessors = vec![Vec::new(); ids.len()];
        for c in &manifest.connections {
            let (Some(&from), Some(&to)) = (index.get(c.from.as_str()), index.get(c.to.as_str()))
            else {
                return Err(GraphError::UnknownEndpoint {
                    from: c.from.clone(),
                    to: c.to.clone(),
                });
            };
            if !successors[from].contains(&to) {
                successors[from].push(to);
                predecessors[to].push(from);
            }
        }
        if let Some(cycle) = find_cycles(&successors).into_iter().next() {
            return Err(GraphError::Cycle(
                cycle.into_iter().map(|i| ids[i].clone()).collect(),
            ));
        }
        let emits_to_client = manifest
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| successors[i].is_empty() || n.is_output_node)
            .collect();
        Ok(Self {
            ids,
            successors,
            predecessors,
            emits_to_client,
        })
    }

    /// Number of nodes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True for a graph with no nodes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Id of node `i`.
    #[must_use]
    pub fn id(&self, i: usize) -> &str {
        &self.ids[i]
    }

    /// Nodes fed by node `i`.
    #[must_use]
    pub fn successors(&self, i: usize) -> &[usize] {
        &self.successors[i]
    }

    /// Nodes feeding node `i`.
    #[must_use]
    pub fn predecessors(&self, i: usize) -> &[usize] {
        &self.predecessors[i]
    }

    /// Nodes with no incoming edge: pipeline input goes to each of them.
    pub fn sources(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).filter(|&i| self.predecessors[i].is_empty())
    }

    /// True when node `i`'s outputs go to the client (a sink, or marked `is_output_node`).
    #[must_use]
    pub fn emits_to_client(&self, i: usize) -> bool {
        self.emits_to_client[i]
    }
}

/// Every cycle in the graph given as adjacency lists, one per strongly connected component
/// with more than one node (self-loops are reported by validation, not here). Each cycle is a
/// node sequence whose last node links back to the first.
#[must_use]
pub fn find_cycles(successors: &[Vec<usize>]) -> Vec<Vec<usize>> {
    strongly_connected_components(successors)
        .into_iter()
        .filter(|scc| scc.len() > 1)
        .map(|scc| cycle_within(successors, &scc))
        .collect()
}

/// Tarjan's algorithm, iterative so deep pipelines cannot overflow the stack.
fn strongly_connected_components(successors: &[Vec<usize>]) -> Vec<Vec<usize>> {
    const UNVISITED: usize = usize::MAX;
    let n = successors.len();
    let mut index = vec![UNVISITED; n];
    let mut lowlink = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next_index = 0;
    let mut components = Vec::new();

    for root in 0..n {
        if index[root] != UNVISITED {
            continue;
        }
        // (node, position of the next successor to look at)
        let mut work = vec![(root, 0usize)];
        while let Some(&mut (v, ref mut pos)) = work.last_mut() {
            if *pos == 0 && index[v] == UNVISITED {
                index[v] = next_index;
                lowlink[v] = next_index;
                next_index += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = successors[v].get(*pos) {
                *pos += 1;
                if index[w] == UNVISITED {
                    work.push((w, 0));
                } else if on_stack[w] {
                    lowlink[v] = lowlink[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                lowlink[parent] = lowlink[parent].min(lowlink[v]);
            }
            if lowlink[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                component.sort_unstable();
                components.push(component);
            }
        }
    }
    components.sort();
    components
}

/// One concrete cycle through the smallest node of a strongly connected component.
fn cycle_within(successors: &[Vec<usize>], scc: &[usize]) -> Vec<usize> {
    let start = scc[0];
    let mut parent = vec![usize::MAX; successors.len()];
    let mut queue = std::collections::VecDeque::from([start]);
    // Breadth-first from `start` inside the component until an edge leads back to `start`.
    while let Some(v) = queue.pop_front() {
        for &w in &successors[v] {
            if w == start {
                let mut path = vec![v];
                let mut cur = v;
                while cur != start {
                    cur = parent[cur];
                    path.push(cur);
                }
                path.reverse();
                return path;
            }
            if scc.binary_search(&w).is_ok() && parent[w] == usize::MAX && w != start {
                parent[w] = v;
                queue.push_back(w);
            }
        }
    }
    scc.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adj(n: usize, edges: &[(usize, usize)]) -> Vec<Vec<usize>> {
        let mut a = vec![Vec::new(); n];
        for &(f, t) in edges {
            a[f].push(t);
        }
        a
    }

    #[test]
    fn dag_has_no_cycles() {
        assert!(find_cycles(&adj(4, &[(0, 1), (0, 2), (1, 3), (2, 3)])).is_empty());
    }

    #[test]
    fn finds_each_cycle_with_its_nodes_in_order() {
        // 0 -> 1 -> 2 -> 0, and separately 3 <-> 4, plus a tail 2 -> 5.
        let cycles = find_cycles(&adj(6, &[(0, 1), (1, 2), (2, 0), (3, 4), (4, 3), (2, 5)]));
        assert_eq!(cycles, vec![vec![0, 1, 2], vec![3, 4]]);
    }

    #[test]
    fn deep_chain_does_not_overflow() {
        let n = 200_000;
        let edges: Vec<_> = (0..n - 1).map(|i| (i, i + 1)).collect();
        assert!(find_cycles(&adj(n, &edges)).is_empty());
    }
}
