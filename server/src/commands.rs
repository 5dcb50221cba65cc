//! Chat commands built into the server (`/help`, `/who`, `/kick`, `/weather`,
//! `/plugins`, `/plugin`), in one registry that both dispatch and `/help`
//! read. Plugin commands are registered with the plugin host; `/help` lists both.

use shard_protocol::limits::MAX_CHAT_CHARS;

use crate::admin::PluginAction;
use crate::world::{World, short_key};

/// One command as `/help` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandInfo {
    /// Name without the slash.
    pub name: String,
    /// One-line help.
    pub help: String,
    /// Only admins may run it.
    pub admin: bool,
}

/// What a builtin command's handler works on: the world and the plugin
/// host, which the simulation owns; a trait so this registry does not reach
/// into the simulation's fields.
pub trait CommandContext {
    /// The world (players, chat, weather).
    fn world(&mut self) -> &mut World;
    /// The plugin commands `peer` may run, for `/help`.
    fn plugin_commands(&self, is_admin: bool) -> Vec<CommandInfo>;
    /// One line per plugin with its version, state and counts, for `/plugins`.
    fn plugin_list(&self) -> String;
    /// Reloads, enables or disables a plugin; the answer for the admin.
    fn plugin_action(&mut self, action: PluginAction, target: &str) -> String;
}

/// One builtin command: the single registry that dispatch and `/help` read,
/// so `/help` lists exactly what the server runs.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// Name without the slash.
    pub name: &'static str,
    /// How to call it, as `/help` shows it (`/kick NAME|#PEER_ID|KEY_PREFIX`).
    pub usage: &'static str,
    /// What it does, one line.
    pub help: &'static str,
    /// Only admins may run it (and only admins see it in `/help`).
    pub admin: bool,
    /// Runs it for `peer` with the text after the name.
    run: fn(&mut dyn CommandContext, u32, &str),
}

/// Every builtin command, in the order `/help` lists them.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "help",
        usage: "/help",
        help: "list the commands you may run",
        admin: false,
        run: help,
    },
    Builtin {
        name: "who",
        usage: "/who",
        help: "list the players online with their #peer ids",
        admin: false,
        run: who,
    },
    Builtin {
        name: "kick",
        usage: "/kick NAME|#PEER_ID|KEY_PREFIX",
        help: "disconnect a player",
        admin: true,
        run: kick,
    },
    Builtin {
        name: "weather",
        usage: "/weather N",
        help: "set the weather preset for everyone",
        admin: true,
        run: weather,
    },
    Builtin {
        name: "plugins",
        usage: "/plugins",
        help: "list the plugins with their state, errors and restarts",
        admin: true,
        run: plugins,
    },
    Builtin {
        name: "plugin",
        usage: "/plugin reload|enable|disable NAME",
        help: "reload a plugin from disk, or turn it on or off",
        admin: true,
        run: plugin,
    },
];

/// The builtin command called `name`, if there is one (plugins may not take these names).
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// Splits `/name args…` into name and the rest.
pub fn split_command(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('/')?;
    let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if name.is_empty() {
        return None;
    }
    Some((name, args.trim()))
}

/// The refusal a non-admin gets for an admin command.
pub fn admin_refusal(name: &str) -> String {
    format!(
        "/{name} is for admins only; ask the server operator to add your key to `admins` in server.toml"
    )
}

/// Runs a builtin command for `peer` (refusing admin commands to others);
/// `None` when `name` is not a builtin.
pub fn run_builtin(ctx: &mut dyn CommandContext, peer: u32, name: &str, args: &str) -> Option<()> {
    let cmd = builtin(name)?;
    let is_admin = ctx.world().peer(peer).is_some_and(|p| p.admin);
    if cmd.admin && !is_admin {
        ctx.world().server_chat(peer, &admin_refusal(name));
    } else {
        (cmd.run)(ctx, peer, args);
    }
    Some(())
}

/// The `/help` answer for a peer: its builtins then the plugin commands, as
/// chat lines that each fit [`MAX_CHAT_CHARS`] (the first starts `commands:`).
pub fn help_lines(is_admin: bool, plugin_commands: &[CommandInfo]) -> Vec<String> {
    let entries = BUILTINS
        .iter()
        .filter(|b| is_admin || !b.admin)
        .map(|b| format!("{} - {}", b.usage, b.help))
        .chain(
            plugin_commands
                .iter()
                .filter(|c| is_admin || !c.admin)
                .map(|c| format!("/{} - {}", c.name, c.help)),
        );
    let mut lines = vec![String::from("commands: ")];
    for entry in entries {
        let Some(line) = lines.last_mut() else {
            break;
        };
        let sep = if line.ends_with(": ") { "" } else { "; " };
        if line.chars().count() + sep.len() + entry.chars().count() > MAX_CHAT_CHARS
            && !line.ends_with(": ")
        {
            lines.push(entry);
        } else {
            line.push_str(sep);
            line.push_str(&entry);
        }
    }
    lines
}

fn help(ctx: &mut dyn CommandContext, peer: u32, _args: &str) {
    let is_admin = ctx.world().peer(peer).is_some_and(|p| p.admin);
    let extra = ctx.plugin_commands(is_admin);
    for line in help_lines(is_admin, &extra) {
        ctx.world().server_chat(peer, &line);
    }
}

fn who(ctx: &mut dyn CommandContext, peer: u32, _args: &str) {
    let world = ctx.world();
    let names: Vec<String> = world
        .peers()
        .map(|p| format!("#{} {} ({})", p.id, p.name, short_key(&p.fingerprint)))
        .collect();
    world.server_chat(
        peer,
        &format!("{} online: {}", names.len(), names.join(", ")),
    );
}

fn kick(ctx: &mut dyn CommandContext, peer: u32, args: &str) {
    let world = ctx.world();
    match world.find_peer(args) {
        Ok(target) => {
            let name = world
                .peer(target)
                .map(|p| p.name.clone())
                .unwrap_or_default();
            world.kick(target, "kicked by an admin");
            world.server_broadcast(&format!("{name} was kicked (#{target})"));
        }
        Err(why) => world.server_chat(peer, &why.to_string()),
    }
}

fn weather(ctx: &mut dyn CommandContext, peer: u32, args: &str) {
    let world = ctx.world();
    match args.parse::<u32>() {
        Ok(id) => world.set_weather(id),
        Err(_) => world.server_chat(
            peer,
            &format!("/weather takes a preset number, not `{args}`"),
        ),
    }
}

fn plugins(ctx: &mut dyn CommandContext, peer: u32, _args: &str) {
    let list = ctx.plugin_list();
    ctx.world().server_chat(peer, &list);
}

fn plugin(ctx: &mut dyn CommandContext, peer: u32, args: &str) {
    let (verb, target) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
    let action = match verb {
        "reload" => Some(PluginAction::Reload),
        "enable" => Some(PluginAction::Enable),
        "disable" => Some(PluginAction::Disable),
        _ => None,
    };
    let reply = match action {
        Some(action) => ctx.plugin_action(action, target.trim()),
        None => format!("usage: {}", builtin("plugin").map_or("", |b| b.usage)),
    };
    ctx.world().server_chat(peer, &reply);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_command_separates_name_and_args() {
        assert_eq!(split_command("/kick  bob "), Some(("kick", "bob")));
        assert_eq!(split_command("/help"), Some(("help", "")));
        assert_eq!(split_command("hello"), None);
        assert_eq!(split_command("/"), None);
    }

    #[test]
    fn help_shows_admins_every_builtin_and_players_only_theirs() {
        let plugin = [
            CommandInfo {
                name: "greet".into(),
                help: "say hello".into(),
                admin: false,
            },
            CommandInfo {
                name: "secret".into(),
                help: "admins only".into(),
                admin: true,
            },
        ];
        let admin = help_lines(true, &plugin).join("\n");
        for b in BUILTINS {
            assert!(admin.contains(b.usage), "{} missing: {admin}", b.name);
        }
        assert!(admin.contains("/plugin reload|enable|disable NAME") && admin.contains("/secret"));
        let player = help_lines(false, &plugin).join("\n");
        assert!(player.starts_with("commands: /help - "), "{player}");
        assert!(
            player.contains("/who") && player.contains("/greet"),
            "{player}"
        );
        for hidden in ["/kick", "/weather", "/plugins", "/plugin ", "/secret"] {
            assert!(
                !player.contains(hidden),
                "{hidden} shown to a player: {player}"
            );
        }
    }

    #[test]
    fn a_long_help_is_split_into_lines_that_fit_a_chat_message() {
        let many: Vec<CommandInfo> = (0..40)
            .map(|i| CommandInfo {
                name: format!("cmd{i}"),
                help: "does a thing that takes a few words to say".into(),
                admin: false,
            })
            .collect();
        let lines = help_lines(false, &many);
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| l.chars().count() <= MAX_CHAT_CHARS));
        let all = lines.join("; ");
        assert!((0..40).all(|i| all.contains(&format!("/cmd{i} - "))));
    }

    #[test]
    fn builtin_names_are_unique() {
        for (i, b) in BUILTINS.iter().enumerate() {
            assert!(
                BUILTINS[i + 1..].iter().all(|o| o.name != b.name),
                "{}",
                b.name
            );
            assert!(b.usage.starts_with(&format!("/{}", b.name)));
        }
    }
}
