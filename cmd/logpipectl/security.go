package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SCRAM users and ACLs, over the Kafka protocol (AlterUserScramCredentials,
// DescribeUserScramCredentials, CreateAcls, DescribeAcls, DeleteAcls): they
// work against this broker and against Apache Kafka alike.

type userJSON struct {
	Name       string           `json:"name"`
	Mechanisms map[string]int32 `json:"mechanisms"` // iterations
}

func (c *cli) usersList() error {
	d, err := c.adm.DescribeUserSCRAMs(c.ctx)
	if err != nil {
		return err
	}
	var users []userJSON
	for name, u := range d {
		if u.Err != nil {
			continue
		}
		uj := userJSON{Name: name, Mechanisms: map[string]int32{}}
		for _, ci := range u.CredInfos {
			uj.Mechanisms[ci.Mechanism.String()] = ci.Iterations
		}
		users = append(users, uj)
	}
	sort.Slice(users, func(i, j int) bool { return users[i].Name < users[j].Name })
	return c.print(users, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "USER\tMECHANISMS")
		for _, u := range users {
			var ms []string
			for m, it := range u.Mechanisms {
				ms = append(ms, fmt.Sprintf("%s(%d)", m, it))
			}
			sort.Strings(ms)
			fmt.Fprintf(w, "%s\t%s\n", u.Name, strings.Join(ms, ","))
		}
	})
}

func scramMechanism(s string) (kadm.ScramMechanism, error) {
	switch strings.ToUpper(s) {
	case "SCRAM-SHA-256":
		return kadm.ScramSha256, nil
	case "SCRAM-SHA-512":
		return kadm.ScramSha512, nil
	}
	return 0, fmt.Errorf("%w: --mechanism %q: want SCRAM-SHA-512 or SCRAM-SHA-256", errUsage, s)
}

func (c *cli) usersAdd(args []string) error {
	if len(args) < 1 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("%w: users add NAME --password-file F", errUsage)
	}
	fs := flag.NewFlagSet("users add", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	mech := fs.String("mechanism", "SCRAM-SHA-512", "")
	iters := fs.Int("iterations", 8192, "")
	pwFile := fs.String("password-file", "", "")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		return fmt.Errorf("%w: users add NAME [--mechanism M] [--iterations N] --password-file F", errUsage)
	}
	if *pwFile == "" {
		return fmt.Errorf("%w: users add needs --password-file (a password on the command line shows in ps and shell history)", errUsage)
	}
	m, err := scramMechanism(*mech)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(*pwFile)
	if err != nil {
		return err
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	if pw = strings.TrimRight(pw, "\r"); pw == "" {
		return fmt.Errorf("%s: empty password", *pwFile)
	}
	res, err := c.adm.AlterUserSCRAMs(c.ctx, nil, []kadm.UpsertSCRAM{{User: args[0], Mechanism: m, Iterations: int32(*iters), Password: pw}})
	if err != nil {
		return err
	}
	if err := res.Error(); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "added %s (%s)\n", args[0], m)
	return nil
}

func (c *cli) usersDelete(args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("%w: users delete NAME [--mechanism M]", errUsage)
	}
	fs := flag.NewFlagSet("users delete", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	mech := fs.String("mechanism", "", "")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: users delete NAME [--mechanism M]", errUsage)
	}
	// Delete the mechanisms the user has (kadm answers one result per user).
	d, err := c.adm.DescribeUserSCRAMs(c.ctx, args[0])
	if err != nil {
		return err
	}
	u, ok := d[args[0]]
	if !ok || u.Err != nil || len(u.CredInfos) == 0 {
		return fmt.Errorf("user %s: no SCRAM credentials", args[0])
	}
	var dels []kadm.DeleteSCRAM
	for _, ci := range u.CredInfos {
		if *mech == "" || strings.EqualFold(*mech, ci.Mechanism.String()) {
			dels = append(dels, kadm.DeleteSCRAM{User: args[0], Mechanism: ci.Mechanism})
		}
	}
	if len(dels) == 0 {
		return fmt.Errorf("user %s has no %s credential", args[0], *mech)
	}
	res, err := c.adm.AlterUserSCRAMs(c.ctx, dels, nil)
	if err != nil {
		return err
	}
	if err := res.Error(); err != nil {
		return fmt.Errorf("user %s: %w", args[0], err)
	}
	fmt.Fprintf(c.out, "deleted %s\n", args[0])
	return nil
}

type aclJSON struct {
	Principal  string `json:"principal"`
	Host       string `json:"host"`
	Permission string `json:"permission"`
	Resource   string `json:"resource"`
	Name       string `json:"name"`
	Pattern    string `json:"pattern"`
	Operation  string `json:"operation"`
}

func (c *cli) aclsList() error {
	b := kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).Operations(kadm.OpAny).
		Allow().AllowHosts().Deny().DenyHosts()
	results, err := c.adm.DescribeACLs(c.ctx, b)
	if err != nil {
		return err
	}
	var out []aclJSON
	for _, r := range results {
		if r.Err != nil {
			return r.Err
		}
		for _, d := range r.Described {
			out = append(out, aclJSON{Principal: d.Principal, Host: d.Host, Permission: d.Permission.String(),
				Resource: d.Type.String(), Name: d.Name, Pattern: d.Pattern.String(), Operation: d.Operation.String()})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Principal+out[i].Resource+out[i].Name+out[i].Operation < out[j].Principal+out[j].Resource+out[j].Name+out[j].Operation
	})
	return c.print(out, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "PRINCIPAL\tHOST\tPERMISSION\tRESOURCE\tNAME\tPATTERN\tOPERATION")
		for _, a := range out {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Principal, a.Host, a.Permission, a.Resource, a.Name, a.Pattern, a.Operation)
		}
	})
}

// aclsChange adds or removes the bindings the flags describe.
func (c *cli) aclsChange(args []string, add bool) error {
	fs := flag.NewFlagSet("acls", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	principal := fs.String("principal", "", "")
	deny := fs.Bool("deny", false, "")
	host := fs.String("host", "*", "")
	topic := fs.String("topic", "", "")
	group := fs.String("group", "", "")
	cluster := fs.Bool("cluster", false, "")
	prefixed := fs.Bool("prefixed", false, "")
	ops := fs.String("operation", "", "")
	syntax := fmt.Errorf("%w: acls add|remove --principal User:NAME [--deny] [--host H] (--topic T | --group G | --cluster) [--prefixed] --operation OP[,OP...]", errUsage)
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *principal == "" || *ops == "" {
		return syntax
	}
	n := 0
	for _, set := range []bool{*topic != "", *group != "", *cluster} {
		if set {
			n++
		}
	}
	if n != 1 {
		return syntax
	}
	var operations []kadm.ACLOperation
	for _, o := range strings.Split(*ops, ",") {
		op, err := kmsg.ParseACLOperation(strings.TrimSpace(o))
		if err != nil {
			return fmt.Errorf("%w: --operation %q: %v", errUsage, o, err)
		}
		operations = append(operations, op)
	}
	b := kadm.NewACLs().Operations(operations...)
	if *deny {
		b = b.Deny(*principal).DenyHosts(*host)
	} else {
		b = b.Allow(*principal).AllowHosts(*host)
	}
	switch {
	case *topic != "":
		b = b.Topics(*topic)
	case *group != "":
		b = b.Groups(*group)
	default:
		b = b.Clusters()
	}
	if *prefixed {
		b = b.ResourcePatternType(kadm.ACLPatternPrefixed)
	}
	if add {
		res, err := c.adm.CreateACLs(c.ctx, b)
		if err != nil {
			return err
		}
		var errs []error
		for _, r := range res {
			if r.Err != nil {
				errs = append(errs, r.Err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "added %d ACLs\n", len(res))
		return nil
	}
	res, err := c.adm.DeleteACLs(c.ctx, b)
	if err != nil {
		return err
	}
	deleted := 0
	for _, r := range res {
		if r.Err != nil {
			return r.Err
		}
		deleted += len(r.Deleted)
	}
	fmt.Fprintf(c.out, "removed %d ACLs\n", deleted)
	return nil
}
