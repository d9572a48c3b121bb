//! Reports: the serde structures that are the JSON contract, and their table, CSV and Markdown
//! renderings. Display units are chosen here, at the edge.

pub mod budget;
pub mod capacity;
pub mod chart;
pub mod compare;
pub mod estimate;
pub mod plan;
pub mod printer;
