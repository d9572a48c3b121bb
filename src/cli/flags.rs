//! Command-line flags built from the settings table (`crate::scenario::settings`): one flag per
//! setting, with the table's help, default and choices, so the CLI cannot drift from the other
//! faces. The flags' text is collected as given and turned into a `Scenario` by the same
//! `Scenario::set` that Python and the web API use; errors therefore read the same everywhere.

use crate::error::Result;
use crate::scenario::{settings, Group, Kind, Scenario, SettingDef};
use clap::builder::PossibleValuesParser;
use clap::{Arg, ArgAction, ArgMatches, Command};

/// Which settings a command takes.
pub type Filter = fn(&SettingDef) -> bool;

/// `estimate`, `compare`, `chart breakdown|sweep|max-batch`: one plan, no search.
pub fn one_plan(d: &SettingDef) -> bool {
    crate::api::Entry::Estimate.takes(d)
}

/// `plan`, `chart plans`: the model and step, the cluster and the search bounds.
pub fn search(d: &SettingDef) -> bool {
    crate::api::Entry::Plan.takes(d)
}

/// `report`: the model and step; the report chooses GPUs, plans and clusters itself.
pub fn model_and_step(d: &SettingDef) -> bool {
    matches!(d.group, Group::Model | Group::Training | Group::FineTune | Group::Serving | Group::Runtime)
}

fn negated(key: &str) -> String {
    format!("no-{key}")
}

/// Add the flags of the settings `filter` keeps to `cmd`.
pub fn augment(mut cmd: Command, filter: Filter) -> Command {
    for d in settings().iter().filter(|d| filter(d)) {
        let mut help = d.help.clone();
        if let Some(default) = &d.default {
            help.push_str(&format!(" [default: {default}]"));
        }
        let heading = d.group.heading();
        let mut arg = Arg::new(d.key).long(d.key).help(help).help_heading(heading);
        if let Some(c) = d.short {
            arg = arg.short(c);
        }
        match d.kind {
            Kind::Switch => {
                let off = negated(d.key);
                cmd = cmd.arg(arg.action(ArgAction::SetTrue).overrides_with(off.clone())).arg(
                    Arg::new(off.clone())
                        .long(off)
                        .action(ArgAction::SetTrue)
                        .overrides_with(d.key)
                        .help(format!("Turn --{} off", d.key))
                        .help_heading(heading),
                );
                continue;
            }
            Kind::Choice => {
                arg =
                    arg.value_name("NAME").value_parser(PossibleValuesParser::new(d.choices.clone())).ignore_case(true);
            }
            Kind::List => {
                arg = arg.value_name("NAME").action(ArgAction::Append).value_delimiter(',');
            }
            Kind::File => arg = arg.value_name("FILE").value_hint(clap::ValueHint::FilePath),
            Kind::Size => arg = arg.value_name("SIZE"),
            Kind::Number => arg = arg.value_name("X").allow_negative_numbers(true),
            Kind::Count | Kind::Integer => arg = arg.value_name("N").allow_negative_numbers(true),
            Kind::Text => arg = arg.value_name("TEXT"),
        }
        cmd = cmd.arg(arg.action(if d.kind == Kind::List { ArgAction::Append } else { ArgAction::Set }));
    }
    cmd
}

/// The settings given on a command line, as `(key, text)` in table order.
pub fn collect(m: &ArgMatches, filter: Filter) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for d in settings().iter().filter(|d| filter(d)) {
        match d.kind {
            Kind::Switch => {
                if m.get_flag(d.key) {
                    out.push((d.key, "on".to_string()));
                } else if m.get_flag(&negated(d.key)) {
                    out.push((d.key, "off".to_string()));
                }
            }
            Kind::List => {
                if let Some(values) = m.get_many::<String>(d.key) {
                    out.push((d.key, values.cloned().collect::<Vec<_>>().join(",")));
                }
            }
            _ => {
                if let Some(v) = m.get_one::<String>(d.key) {
                    out.push((d.key, v.clone()));
                }
            }
        }
    }
    out
}

/// Declares a flags struct for a filter: `clap::Args` from the table, the raw settings kept.
macro_rules! flags {
    ($(#[$meta:meta])* $name:ident, $filter:path) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default)]
        pub struct $name {
            /// The settings given, `(key, text)`, not yet checked.
            pub given: Vec<(&'static str, String)>,
        }

        impl clap::FromArgMatches for $name {
            fn from_arg_matches(m: &ArgMatches) -> std::result::Result<Self, clap::Error> {
                Ok($name { given: collect(m, $filter) })
            }
            fn update_from_arg_matches(&mut self, m: &ArgMatches) -> std::result::Result<(), clap::Error> {
                self.given = collect(m, $filter);
                Ok(())
            }
        }

        impl clap::Args for $name {
            fn augment_args(cmd: Command) -> Command {
                augment(cmd, $filter)
            }
            fn augment_args_for_update(cmd: Command) -> Command {
                augment(cmd, $filter)
            }
        }

        impl $name {
            /// The settings as a scenario (each value checked as it is set).
            pub fn scenario(&self) -> Result<Scenario> {
                Scenario::from_pairs(self.given.iter().map(|(k, v)| (*k, v.as_str())))
            }
        }
    };
}

flags!(
    /// The settings of one scenario with one parallel plan.
    ScenarioFlags,
    one_plan
);
flags!(
    /// The settings of a plan search.
    SearchFlags,
    search
);
flags!(
    /// The model and step settings (for `report`).
    ModelStepFlags,
    model_and_step
);

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, FromArgMatches};

    #[test]
    fn every_setting_is_a_flag_of_estimate() {
        let cmd = ScenarioFlags::augment_args(Command::new("t"));
        for d in settings().iter().filter(|d| one_plan(d)) {
            assert!(cmd.get_arguments().any(|a| a.get_long() == Some(d.key)), "--{}", d.key);
        }
        cmd.debug_assert();
    }

    #[test]
    fn flags_become_the_same_settings() {
        let cmd = ScenarioFlags::augment_args(Command::new("t"));
        let m = cmd
            .try_get_matches_from(["t", "-m", "gpt2", "--batch", "4", "--no-dropout", "--gpu", "a100-80gb,h100-sxm"])
            .unwrap();
        let s = ScenarioFlags::from_arg_matches(&m).unwrap().scenario().unwrap();
        let mut expected = Scenario::default();
        for (k, v) in [("model", "gpt2"), ("batch", "4"), ("dropout", "off"), ("gpu", "a100-80gb,h100-sxm")] {
            expected.set(k, v).unwrap();
        }
        assert_eq!(s, expected);
    }
}
