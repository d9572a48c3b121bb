//! The capacity report of `memplan report`: one document a person can forward — what was
//! assumed, the memory per GPU term by term, which GPUs fit (and the largest micro-batch on
//! each), the best parallel plans, and the charts. HTML embeds the charts as inline SVG (one
//! self-contained file); Markdown links chart files written beside it.

use super::printer::markdown;

/// A table: header and rows of text.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TextTable {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Columns to right-align (numbers).
    pub numeric: Vec<usize>,
}

/// One section: a heading, paragraphs, an optional table, and charts by id.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Section {
    pub heading: String,
    pub paragraphs: Vec<String>,
    pub bullets: Vec<String>,
    pub table: Option<TextTable>,
    /// Ids of charts (see [`CapacityReport::charts`]) shown after the table.
    pub charts: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct CapacityReport {
    pub title: String,
    /// One line under the title (model, parameters, setup).
    pub summary: String,
    pub sections: Vec<Section>,
    /// (id, alt text) of every chart, in order.
    pub charts: Vec<(String, String)>,
    pub footer: String,
}

/// Escape text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Inline `code` spans in Markdown-ish text become <code> in HTML.
fn inline_html(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in escape(s).split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<code>{part}</code>"));
        } else {
            out.push_str(part);
        }
    }
    out
}

const CSS: &str = "body{font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Helvetica,Arial,sans-serif;\
max-width:1260px;margin:2em auto;padding:0 1.5em;color:#222;line-height:1.45}\
h1{font-size:1.7em;margin-bottom:.2em}h2{font-size:1.3em;margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}\
.summary{color:#555;margin-top:0}table{border-collapse:collapse;margin:1em 0;font-size:.93em}\
th,td{border:1px solid #d6d6d6;padding:.3em .7em;text-align:left;vertical-align:top}th{background:#f3f3f3}\
td.num{text-align:right;font-variant-numeric:tabular-nums}figure{margin:1.2em 0}figure svg{max-width:100%;height:auto}\
code{background:#f3f3f3;padding:0 .25em;border-radius:3px}footer{margin-top:3em;color:#777;font-size:.85em}";

impl CapacityReport {
    /// One self-contained HTML file; `svg(id)` gives each chart's SVG document.
    pub fn to_html(&self, svg: &dyn Fn(&str) -> Option<String>) -> String {
        let mut s = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        s.push_str(&format!("<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n", escape(&self.title)));
        s.push_str(&format!(
            "<h1>{}</h1>\n<p class=\"summary\">{}</p>\n",
            escape(&self.title),
            inline_html(&self.summary)
        ));
        for sec in &self.sections {
            s.push_str(&format!("<h2>{}</h2>\n", escape(&sec.heading)));
            for p in &sec.paragraphs {
                s.push_str(&format!("<p>{}</p>\n", inline_html(p)));
            }
            if !sec.bullets.is_empty() {
                s.push_str("<ul>\n");
                for b in &sec.bullets {
                    s.push_str(&format!("<li>{}</li>\n", inline_html(b)));
                }
                s.push_str("</ul>\n");
            }
            if let Some(t) = &sec.table {
                s.push_str("<table>\n<thead><tr>");
                for h in &t.header {
                    s.push_str(&format!("<th>{}</th>", escape(h)));
                }
                s.push_str("</tr></thead>\n<tbody>\n");
                for r in &t.rows {
                    s.push_str("<tr>");
                    for (i, c) in r.iter().enumerate() {
                        let class = if t.numeric.contains(&i) { " class=\"num\"" } else { "" };
                        s.push_str(&format!("<td{class}>{}</td>", inline_html(c)));
                    }
                    s.push_str("</tr>\n");
                }
                s.push_str("</tbody>\n</table>\n");
            }
            for id in &sec.charts {
                let alt = self.charts.iter().find(|(i, _)| i == id).map_or("", |(_, a)| a.as_str());
                if let Some(doc) = svg(id) {
                    // Drop the XML declaration: the SVG element is embedded in the HTML document.
                    let body = doc.find("<svg").map_or(doc.as_str(), |i| &doc[i..]);
                    s.push_str(&format!(
                        "<figure id=\"chart-{}\" role=\"img\" aria-label=\"{}\">\n{}\n</figure>\n",
                        escape(id),
                        escape(alt),
                        body.trim()
                    ));
                }
            }
        }
        s.push_str(&format!("<footer>{}</footer>\n</body>\n</html>\n", inline_html(&self.footer)));
        s
    }

    /// Markdown; `file(id)` gives the path of each chart file relative to the document.
    pub fn to_markdown(&self, file: &dyn Fn(&str) -> Option<String>) -> String {
        let mut s = format!("# {}\n\n{}\n", self.title, self.summary);
        for sec in &self.sections {
            s.push_str(&format!("\n## {}\n\n", sec.heading));
            for p in &sec.paragraphs {
                s.push_str(&format!("{p}\n\n"));
            }
            for b in &sec.bullets {
                s.push_str(&format!("- {b}\n"));
            }
            if !sec.bullets.is_empty() {
                s.push('\n');
            }
            if let Some(t) = &sec.table {
                let header: Vec<&str> = t.header.iter().map(String::as_str).collect();
                let rows: Vec<Vec<String>> =
                    t.rows.iter().map(|r| r.iter().map(|c| c.replace('|', "\\|")).collect()).collect();
                s.push_str(&markdown(&header, &rows));
                s.push('\n');
            }
            for id in &sec.charts {
                let alt = self.charts.iter().find(|(i, _)| i == id).map_or("", |(_, a)| a.as_str());
                if let Some(path) = file(id) {
                    s.push_str(&format!("![{alt}]({path})\n\n"));
                }
            }
        }
        s.push_str(&format!("---\n{}\n", self.footer));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_text_and_embeds_svg_once() {
        let r = CapacityReport {
            title: "a <b> & \"c\"".into(),
            summary: "uses `x<y`".into(),
            sections: vec![Section { heading: "h".into(), charts: vec!["c1".into()], ..Section::default() }],
            charts: vec![("c1".into(), "alt".into())],
            footer: String::new(),
        };
        let html =
            r.to_html(&|id| (id == "c1").then(|| "<?xml version=\"1.0\"?>\n<svg><text>t</text></svg>".to_string()));
        assert!(html.contains("<h1>a &lt;b&gt; &amp; &quot;c&quot;</h1>"));
        assert!(html.contains("<code>x&lt;y</code>"));
        assert_eq!(html.matches("<svg>").count(), 1);
        assert!(!html.contains("<?xml"));
    }
}

/// The capacity answer of a serving framework: what it would print at start-up on each GPU.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ServingCapacity {
    pub framework: String,
    pub version: String,
    /// One budget per GPU checked (vLLM).
    pub per_gpu: Vec<(String, crate::memory::serving::VllmBudget)>,
}

impl ServingCapacity {
    /// Lines for the estimate table: the framework and release, each GPU's budget term by term,
    /// the `# GPU blocks` vLLM would print and the concurrency at the context length.
    pub fn to_text(&self, u: crate::units::ByteUnits) -> String {
        let mut s = String::new();
        for (gpu, b) in &self.per_gpu {
            s.push_str(&format!(
                "{} {} ({} engine) on {gpu}: {:.2} × {} = {} usable; max_num_batched_tokens {}, max_num_seqs {}, block {} tokens\n",
                self.framework,
                self.version,
                b.engine,
                b.gpu_memory_utilization,
                u.format(b.total_memory),
                u.format(b.usable),
                b.max_num_batched_tokens,
                b.max_num_seqs,
                b.block_size
            ));
            for l in &b.lines {
                s.push_str(&format!("  − {} {}: {}\n", l.term, u.format(l.bytes), l.why));
            }
            let kv = if b.kv_budget >= 0 {
                u.format(b.kv_budget as u64)
            } else {
                format!("-{}", u.format(b.kv_budget.unsigned_abs() as u64))
            };
            s.push_str(&format!(
                "  = KV cache {kv}: # GPU blocks: {} ({} tokens); maximum concurrency for {} tokens per request: {:.2}x\n",
                b.num_gpu_blocks, b.kv_tokens, b.max_model_len, b.max_concurrency
            ));
        }
        s
    }
}
