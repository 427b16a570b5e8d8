package portmap

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxXML caps a device description or SOAP answer we read.
const maxXML = 64 << 10

// WAN connection services that take port mappings, preferred first.
var wanServices = []string{
	"urn:schemas-upnp-org:service:WANIPConnection:2",
	"urn:schemas-upnp-org:service:WANIPConnection:1",
	"urn:schemas-upnp-org:service:WANPPPConnection:1",
}

type xmlService struct {
	ServiceType string `xml:"serviceType"`
	ControlURL  string `xml:"controlURL"`
}

type xmlDevice struct {
	Services []xmlService `xml:"serviceList>service"`
	Devices  []xmlDevice  `xml:"deviceList>device"`
}

type xmlRoot struct {
	URLBase string    `xml:"URLBase"`
	Device  xmlDevice `xml:"device"`
}

// parseDescription finds the control URL and service type of the WAN
// connection service in an IGD's device description fetched from loc.
// The control URL must be on loc's host and port. Errors: ErrMalformed,
// ErrNoIGD (no usable service).
func parseDescription(b []byte, loc *url.URL) (control *url.URL, service string, err error) {
	if len(b) > maxXML {
		return nil, "", fmt.Errorf("%w: description of %d bytes", ErrMalformed, len(b))
	}
	var root xmlRoot
	if err := xml.Unmarshal(b, &root); err != nil {
		return nil, "", fmt.Errorf("%w: description: %v", ErrMalformed, err)
	}
	found := map[string]string{}
	var walk func(d *xmlDevice, depth int)
	walk = func(d *xmlDevice, depth int) {
		if depth > 8 {
			return
		}
		for _, s := range d.Services {
			st := strings.TrimSpace(s.ServiceType)
			if _, ok := found[st]; !ok {
				found[st] = strings.TrimSpace(s.ControlURL)
			}
		}
		for i := range d.Devices {
			walk(&d.Devices[i], depth+1)
		}
	}
	walk(&root.Device, 0)
	base := loc
	if root.URLBase != "" {
		if u, err := url.Parse(strings.TrimSpace(root.URLBase)); err == nil && u.Scheme == "http" {
			base = u
		}
	}
	for _, st := range wanServices {
		c, ok := found[st]
		if !ok || c == "" {
			continue
		}
		ref, err := url.Parse(c)
		if err != nil {
			return nil, "", fmt.Errorf("%w: control URL %q", ErrMalformed, c)
		}
		u := base.ResolveReference(ref)
		if u.Scheme != "http" || u.Host != loc.Host {
			return nil, "", fmt.Errorf("%w: control URL %q is not on the device %s", ErrMalformed, u, loc.Host)
		}
		return u, st, nil
	}
	return nil, "", fmt.Errorf("%w: no WAN connection service in the description", ErrNoIGD)
}

// soapRequest builds the body of a SOAP action with its arguments in order.
func soapRequest(service, action string, args [][2]string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0"?>` + "\r\n" +
		`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>`)
	fmt.Fprintf(&b, `<u:%s xmlns:u="%s">`, action, service)
	for _, a := range args {
		fmt.Fprintf(&b, "<%s>%s</%s>", a[0], html.EscapeString(a[1]), a[0])
	}
	fmt.Fprintf(&b, "</u:%s></s:Body></s:Envelope>\r\n", action)
	return b.Bytes()
}

// parseSOAP reads a SOAP answer to action: with status 200, the text of
// each child of <actionResponse> by local name; otherwise a *UPnPError
// with the fault's errorCode and errorDescription. Errors: ErrMalformed.
func parseSOAP(status int, b []byte, action string) (map[string]string, error) {
	if len(b) > maxXML {
		return nil, fmt.Errorf("%w: SOAP answer of %d bytes", ErrMalformed, len(b))
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	var stack []string
	vals := map[string]string{}
	inResp := false
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: SOAP: %v", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) > 16 {
				return nil, fmt.Errorf("%w: SOAP nested too deep", ErrMalformed)
			}
			stack = append(stack, t.Name.Local)
			if t.Name.Local == action+"Response" {
				inResp = true
			}
			text.Reset()
		case xml.CharData:
			if text.Len()+len(t) <= 1024 {
				text.Write(t)
			}
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, fmt.Errorf("%w: SOAP: unbalanced", ErrMalformed)
			}
			name := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if _, seen := vals[name]; !seen && len(vals) < 64 {
				vals[name] = strings.TrimSpace(text.String())
			}
			text.Reset()
		}
	}
	if status == http.StatusOK {
		if !inResp {
			return nil, fmt.Errorf("%w: SOAP answer without %sResponse", ErrMalformed, action)
		}
		return vals, nil
	}
	e := &UPnPError{Action: action, HTTPStatus: status, Description: vals["errorDescription"]}
	if c, err := strconv.Atoi(vals["errorCode"]); err == nil {
		e.Code = c
	}
	return nil, e
}

// upnp is the UPnP IGD method: SOAP calls to a WAN connection service.
type upnp struct {
	client  *http.Client
	control *url.URL
	service string
	local   netip.Addr // our LAN address, NewInternalClient
	desc    string     // mapping description
}

func (c *upnp) String() string { return "UPnP" }

// call runs one SOAP action and returns the answer's values.
func (c *upnp) call(ctx context.Context, action string, args [][2]string) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.control.String(), bytes.NewReader(soapRequest(c.service, action, args)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", `text/xml; charset="utf-8"`)
	req.Header.Set("SOAPAction", `"`+c.service+"#"+action+`"`)
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: UPnP %s: %v", ErrNoAnswer, action, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxXML+1))
	if err != nil {
		return nil, fmt.Errorf("%w: UPnP %s: %v", ErrNoAnswer, action, err)
	}
	return parseSOAP(resp.StatusCode, body, action)
}

func (c *upnp) externalAddr(ctx context.Context) (netip.Addr, error) {
	v, err := c.call(ctx, "GetExternalIPAddress", nil)
	if err != nil {
		return netip.Addr{}, err
	}
	if v["NewExternalIPAddress"] == "" {
		return netip.Addr{}, nil // the IGD has none (not connected, or one it will not tell)
	}
	a, err := netip.ParseAddr(v["NewExternalIPAddress"])
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: external address %q", ErrMalformed, v["NewExternalIPAddress"])
	}
	return a.Unmap(), nil
}

func (c *upnp) mapPort(ctx context.Context, p Proto, internal, external uint16, lease time.Duration) (grant, error) {
	secs := uint32(lease / time.Second)
	add := func(secs uint32) error {
		_, err := c.call(ctx, "AddPortMapping", [][2]string{
			{"NewRemoteHost", ""},
			{"NewExternalPort", strconv.Itoa(int(external))},
			{"NewProtocol", p.String()},
			{"NewInternalPort", strconv.Itoa(int(internal))},
			{"NewInternalClient", c.local.String()},
			{"NewEnabled", "1"},
			{"NewPortMappingDescription", c.desc},
			{"NewLeaseDuration", strconv.FormatUint(uint64(secs), 10)},
		})
		return err
	}
	err := add(secs)
	var ue *UPnPError
	if errors.As(err, &ue) && ue.Code == upnpOnlyPermanent && secs != 0 {
		secs = 0
		err = add(0)
	}
	if err != nil {
		return grant{}, err
	}
	return grant{External: external, Lease: time.Duration(secs) * time.Second}, nil
}

func (c *upnp) unmap(ctx context.Context, p Proto, _, external uint16) error {
	_, err := c.call(ctx, "DeletePortMapping", [][2]string{
		{"NewRemoteHost", ""},
		{"NewExternalPort", strconv.Itoa(int(external))},
		{"NewProtocol", p.String()},
	})
	return err
}
