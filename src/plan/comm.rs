//! Time of one collective over a group of ranks, NCCL-style.
//!
//! Bandwidth term: a ring all-reduce moves 2(n − 1)/n of the buffer through every rank's link,
//! an all-gather or reduce-scatter (n − 1)/n, an all-to-all (n − 1)/n of what each rank sends
//! (NCCL `PERFORMANCE.md` in nccl-tests: "bus bandwidth" = algorithm bandwidth × 2(n−1)/n or
//! (n−1)/n). A group spanning nodes runs hierarchically: the node-local part over NVLink, the
//! cross-node part over the NICs of the group's ranks in each node, which carry it in parallel.
//! Links reach `efficiency` of their nominal rate. Latency term: α per step — an all-reduce
//! across nodes takes NCCL's tree (2·log2(nodes) steps), all-gather and reduce-scatter only have
//! the ring (n − 1 steps; NCCL's `ncclAllGather`/`ncclReduceScatter` run NCCL_ALGO Ring), and a
//! ring inside a node.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collective {
    AllReduce,
    AllGather,
    ReduceScatter,
    AllToAll,
}

/// The links of the cluster, per GPU.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Links {
    /// Intra-node bandwidth per GPU, one direction, bytes/s.
    pub intra: f64,
    /// Inter-node bandwidth per GPU (its NIC share), bytes/s.
    pub inter: f64,
    /// Fraction of the nominal link rate a large collective reaches.
    pub efficiency: f64,
    /// Per-step latency inside a node and across nodes, seconds.
    pub intra_latency: f64,
    pub inter_latency: f64,
    pub gpus_per_node: u64,
}

fn factor(kind: Collective, n: f64) -> f64 {
    if n <= 1.0 {
        return 0.0;
    }
    match kind {
        Collective::AllReduce => 2.0 * (n - 1.0) / n,
        Collective::AllGather | Collective::ReduceScatter | Collective::AllToAll => (n - 1.0) / n,
    }
}

impl Links {
    /// Seconds for `kind` over `n` ranks of which `per_node` share a node; `bytes` is the whole
    /// buffer (all-reduce: the buffer each rank holds; all-gather / reduce-scatter: the gathered
    /// size; all-to-all: what each rank sends in total).
    pub fn time(&self, kind: Collective, bytes: f64, n: u64, per_node: u64) -> f64 {
        if n <= 1 || bytes <= 0.0 {
            return 0.0;
        }
        let per_node = per_node.clamp(1, n);
        let nodes = n.div_ceil(per_node);
        let (intra, inter) = (self.intra * self.efficiency, self.inter * self.efficiency);
        if nodes == 1 {
            let steps = if kind == Collective::AllReduce { 2 * (n - 1) } else { n - 1 };
            return factor(kind, n as f64) * bytes / intra + steps as f64 * self.intra_latency;
        }
        let k = per_node as f64;
        let cross_steps = match kind {
            Collective::AllReduce => 2.0 * (nodes as f64).log2().ceil(),
            Collective::AllGather | Collective::ReduceScatter => (n - 1) as f64,
            Collective::AllToAll => (nodes - 1) as f64,
        };
        let latency =
            cross_steps * self.inter_latency + if per_node > 1 { 2.0 * (k - 1.0) * self.intra_latency } else { 0.0 };
        match kind {
            Collective::AllToAll => {
                // Each rank sends (n − per_node)/n of its buffer off-node through its own NIC.
                let off = (n - per_node) as f64 / n as f64 * bytes / inter;
                let on = (k - 1.0) / n as f64 * bytes / intra;
                off.max(on) + latency
            }
            _ => {
                // Node-local stage over NVLink, then the cross-node ring on 1/k of the data per NIC.
                let local = factor(kind, k) * bytes / intra;
                let cross = factor(kind, nodes as f64) * bytes / (k * inter);
                local + cross + latency
            }
        }
    }

    /// One point-to-point send of `bytes`, inside a node or across nodes.
    pub fn send(&self, bytes: f64, cross_node: bool) -> f64 {
        if bytes <= 0.0 {
            return 0.0;
        }
        if cross_node {
            bytes / (self.inter * self.efficiency) + self.inter_latency
        } else {
            bytes / (self.intra * self.efficiency) + self.intra_latency
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> Links {
        Links { intra: 300e9, inter: 25e9, efficiency: 1.0, intra_latency: 0.0, inter_latency: 0.0, gpus_per_node: 8 }
    }

    #[test]
    fn ring_volumes() {
        let l = links();
        // 8 ranks in a node: 2·7/8 of 1 GB over 300 GB/s.
        let t = l.time(Collective::AllReduce, 1e9, 8, 8);
        assert!((t - 1.75e9 / 300e9).abs() < 1e-15);
        let t = l.time(Collective::AllGather, 1e9, 8, 8);
        assert!((t - 0.875e9 / 300e9).abs() < 1e-15);
        // One rank per node over 4 nodes: the whole ring on the NIC.
        let t = l.time(Collective::AllReduce, 1e9, 4, 1);
        assert!((t - 1.5e9 / 25e9).abs() < 1e-12);
        // 8 ranks per node over 4 nodes: node-local part plus 1/8 of the data per NIC across.
        let t = l.time(Collective::AllReduce, 1e9, 32, 8);
        assert!((t - (1.75e9 / 300e9 + 1.5e9 / (8.0 * 25e9))).abs() < 1e-12);
        assert_eq!(l.time(Collective::AllReduce, 1e9, 1, 1), 0.0);
    }
}
