package portmap

import (
	"errors"
	"fmt"
)

// Sentinel errors. Typed errors (PMPError, UPnPError) unwrap to one of
// ErrRefused or ErrUnsupported so callers can test with errors.Is.
var (
	// ErrNoGateway: no default gateway is configured or found.
	ErrNoGateway = errors.New("portmap: no default gateway")
	// ErrNoAnswer: the gateway did not answer within the deadline.
	ErrNoAnswer = errors.New("portmap: no answer from the gateway")
	// ErrNoIGD: SSDP found no Internet Gateway Device with a WAN
	// connection service.
	ErrNoIGD = errors.New("portmap: no UPnP Internet Gateway Device found")
	// ErrRefused: the gateway answered and refused (not authorized, no
	// resources, network failure, conflict, ...).
	ErrRefused = errors.New("portmap: mapping refused")
	// ErrUnsupported: the gateway does not speak this version or operation.
	ErrUnsupported = errors.New("portmap: unsupported by the gateway")
	// ErrMalformed: the gateway sent bytes that do not parse.
	ErrMalformed = errors.New("portmap: malformed answer")
	// ErrClosed: the Mapper was closed.
	ErrClosed = errors.New("portmap: closed")
)

// PMPError is a non-zero result code from a NAT-PMP or PCP server.
type PMPError struct {
	// Protocol is "NAT-PMP" or "PCP".
	Protocol string
	// Code is the result code of the answer.
	Code int
}

// Error names the protocol and the result code.
func (e *PMPError) Error() string {
	return fmt.Sprintf("portmap: %s result %d (%s)", e.Protocol, e.Code, e.name())
}

func (e *PMPError) name() string {
	if e.Protocol == "PCP" {
		names := []string{"success", "unsupported version", "not authorized", "malformed request",
			"unsupported opcode", "unsupported option", "malformed option", "network failure",
			"no resources", "unsupported protocol", "user exceeded quota", "cannot provide external",
			"address mismatch", "excessive remote peers"}
		if e.Code >= 0 && e.Code < len(names) {
			return names[e.Code]
		}
		return "unknown"
	}
	names := []string{"success", "unsupported version", "not authorized or refused",
		"network failure", "out of resources", "unsupported opcode"}
	if e.Code >= 0 && e.Code < len(names) {
		return names[e.Code]
	}
	return "unknown"
}

// Unwrap returns ErrUnsupported for version and opcode errors, ErrMalformed
// for the server's complaints about our request, ErrRefused otherwise.
func (e *PMPError) Unwrap() error {
	switch {
	case e.Code == 1, e.Protocol == "NAT-PMP" && e.Code == 5, e.Protocol == "PCP" && (e.Code == 4 || e.Code == 5 || e.Code == 9):
		return ErrUnsupported
	}
	return ErrRefused
}

// UPnPError is a SOAP fault (or an HTTP error without one) from an IGD.
type UPnPError struct {
	// Action is the SOAP action ("AddPortMapping", ...).
	Action string
	// HTTPStatus is the response status code.
	HTTPStatus int
	// Code and Description come from the fault's UPnPError element (zero
	// and empty when the answer had none).
	Code        int
	Description string
}

// Error names the action, the code and the description.
func (e *UPnPError) Error() string {
	return fmt.Sprintf("portmap: UPnP %s: HTTP %d, error %d %q", e.Action, e.HTTPStatus, e.Code, e.Description)
}

// Unwrap returns ErrUnsupported for "invalid action" (401) and "optional
// action not implemented" (602), ErrRefused otherwise.
func (e *UPnPError) Unwrap() error {
	if e.Code == 401 || e.Code == 602 {
		return ErrUnsupported
	}
	return ErrRefused
}

// UPnP error codes the Mapper reacts to.
const (
	upnpConflict          = 718 // ConflictInMappingEntry
	upnpOnlyPermanent     = 725 // OnlyPermanentLeasesSupported
	upnpNoSuchEntry       = 714 // NoSuchEntryInArray
	upnpSamePortsRequired = 724 // SamePortValuesRequired
)
