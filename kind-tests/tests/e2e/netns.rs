//! A network namespace standing for a client on another network: one veth link to this
//! machine and a route to the given addresses only (the relay's and the WHIP endpoint's
//! node address), so pod and Service IPs are unreachable from it. Commands run inside with
//! `ip netns exec`. Removed on drop.

use std::net::Ipv4Addr;
use std::process::Command;

use crate::support::{output, run};

pub struct Outside {
    pub name: String,
    host_link: String,
}

/// The link's addresses: this machine's end and the client's.
const HOST_SIDE: &str = "10.213.77.1";
const CLIENT_SIDE: &str = "10.213.77.2";

impl Outside {
    /// A namespace routing to `reachable` only.
    pub fn create(reachable: &[Ipv4Addr]) -> Self {
        let id = std::process::id() % 100_000;
        let name = format!("rm-outside-{id}");
        let (host_link, client_link) = (format!("rmo{id}h"), format!("rmo{id}c"));
        let outside = Self {
            name: name.clone(),
            host_link: host_link.clone(),
        };
        let ip = |args: &[&str]| run(Command::new("ip").args(args));
        ip(&["netns", "add", &name]);
        ip(&[
            "link",
            "add",
            &host_link,
            "type",
            "veth",
            "peer",
            "name",
            &client_link,
        ]);
        ip(&["link", "set", &client_link, "netns", &name]);
        ip(&["addr", "add", &format!("{HOST_SIDE}/30"), "dev", &host_link]);
        ip(&["link", "set", &host_link, "up"]);
        let inside = |args: &[&str]| run(outside.exec("ip").args(args));
        inside(&["link", "set", "lo", "up"]);
        inside(&[
            "addr",
            "add",
            &format!("{CLIENT_SIDE}/30"),
            "dev",
            &client_link,
        ]);
        inside(&["link", "set", &client_link, "up"]);
        for address in reachable {
            inside(&["route", "add", &format!("{address}/32"), "via", HOST_SIDE]);
        }
        outside
    }

    /// `program` run inside the namespace.
    pub fn exec(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Whether the namespace has a route to `address`.
    pub fn routes_to(&self, address: &str) -> bool {
        output(self.exec("ip").args(["route", "get", address]))
            .status
            .success()
    }

    /// Drops every UDP datagram the namespace sends: a network that allows TCP only.
    pub fn block_udp(&self) {
        run(self
            .exec("iptables")
            .args(["-A", "OUTPUT", "-p", "udp", "-j", "DROP"]));
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the link, and with it ours.
        let _ = output(Command::new("ip").args(["netns", "delete", &self.name]));
        let _ = output(Command::new("ip").args(["link", "delete", &self.host_link]));
    }
}
