package netstack

import (
	"errors"
	"net"
	"net/netip"
	"strconv"

	"github.com/embraft/embraft/raft"
)

// The simulated network: node i is 192.0.2.i/24 (TEST-NET-1, RFC 5737,
// never routed) with UDP port 9000+i and MAC 02:00:00:00:00:i (locally
// administered, unicast).
var Subnet = netip.MustParsePrefix("192.0.2.0/24")

const (
	// BasePort + node ID is a node's UDP port.
	BasePort = 9000
	// MaxNodeID is the largest node ID the /24 can address.
	MaxNodeID = 254
	// MTU is the IP MTU of every simulated NIC (Ethernet's).
	MTU = 1500
)

// ErrNodeID: a node ID outside 1..MaxNodeID.
var ErrNodeID = errors.New("netstack: node ID must be 1.." + strconv.Itoa(MaxNodeID))

// NetworkConfig is a node's static configuration on the simulated
// Ethernet. Its String form is what the demo prints, e.g.
//
//	StaticConfigV4 { address: 192.0.2.1/24, gateway: None, mac: 02:00:00:00:00:01, udp_port: 9001, mtu: 1500 }
type NetworkConfig struct {
	ID      raft.NodeID
	MAC     net.HardwareAddr
	Address netip.Prefix // the node's IPv4 address with the subnet's length
	Port    uint16       // the node's UDP port
	MTU     int
}

// NetworkFor returns node id's configuration.
func NetworkFor(id raft.NodeID) (NetworkConfig, error) {
	if id < 1 || id > MaxNodeID {
		return NetworkConfig{}, ErrNodeID
	}
	ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(id)})
	return NetworkConfig{
		ID:      id,
		MAC:     net.HardwareAddr{0x02, 0, 0, 0, 0, byte(id)},
		Address: netip.PrefixFrom(ip, Subnet.Bits()),
		Port:    uint16(BasePort + id),
		MTU:     MTU,
	}, nil
}

// AddrPort is the node's UDP address.
func (c NetworkConfig) AddrPort() netip.AddrPort { return netip.AddrPortFrom(c.Address.Addr(), c.Port) }

func (c NetworkConfig) String() string {
	return "StaticConfigV4 { address: " + c.Address.String() + ", gateway: None, mac: " + c.MAC.String() +
		", udp_port: " + strconv.Itoa(int(c.Port)) + ", mtu: " + strconv.Itoa(c.MTU) + " }"
}
