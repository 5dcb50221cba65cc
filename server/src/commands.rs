//! Chat commands built into the server (`/help`, `/who`, `/kick`, `/weather`).
//! Plugin commands are registered with the plugin host; `/help` lists both.

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

/// The builtin commands: (name, help, admin).
pub const BUILTINS: &[(&str, &str, bool)] = &[
    ("help", "list the commands you may run", false),
    ("who", "list the players online with their #peer ids", false),
    (
        "kick",
        "/kick NAME|#PEER_ID|KEY_PREFIX: disconnect a player",
        true,
    ),
    (
        "weather",
        "/weather N: set the weather preset for everyone",
        true,
    ),
];

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

/// Runs a builtin command for `peer`; `None` when `name` is not a builtin.
/// `extra` lists the plugin commands for `/help`.
pub fn run_builtin(
    world: &mut World,
    peer: u32,
    name: &str,
    args: &str,
    extra: &[CommandInfo],
) -> Option<()> {
    let &(_, _, admin_only) = BUILTINS.iter().find(|(n, _, _)| *n == name)?;
    let is_admin = world.peer(peer).is_some_and(|p| p.admin);
    if admin_only && !is_admin {
        world.server_chat(peer, &admin_refusal(name));
        return Some(());
    }
    match name {
        "help" => {
            let mut lines: Vec<String> = BUILTINS
                .iter()
                .filter(|(_, _, a)| is_admin || !a)
                .map(|(n, h, _)| format!("/{n} - {h}"))
                .collect();
            lines.extend(
                extra
                    .iter()
                    .filter(|c| is_admin || !c.admin)
                    .map(|c| format!("/{} - {}", c.name, c.help)),
            );
            world.server_chat(peer, &format!("commands: {}", lines.join("; ")));
        }
        "who" => {
            let names: Vec<String> = world
                .peers()
                .map(|p| format!("#{} {} ({})", p.id, p.name, short_key(&p.fingerprint)))
                .collect();
            world.server_chat(
                peer,
                &format!("{} online: {}", names.len(), names.join(", ")),
            );
        }
        "kick" => match world.find_peer(args) {
            Ok(target) => {
                let name = world
                    .peer(target)
                    .map(|p| p.name.clone())
                    .unwrap_or_default();
                world.kick(target, "kicked by an admin");
                world.server_broadcast(&format!("{name} was kicked (#{target})"));
            }
            Err(why) => world.server_chat(peer, &why),
        },
        "weather" => match args.parse::<u32>() {
            Ok(id) => world.set_weather(id),
            Err(_) => world.server_chat(
                peer,
                &format!("/weather takes a preset number, not `{args}`"),
            ),
        },
        _ => return None,
    }
    Some(())
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
}
