package experiments

func (v *validator) fault(path string, f *Fault, seen map[string]int, i int, targets map[string]int, s *Spec) {
	if j, dup := seen[f.Name]; dup && f.Name != "" {
		v.addf(path+".name", "duplicate fault name %q (also spec.faults[%d])", f.Name, j)
	} else {
		v.dnsName(path+".name", f.Name)
		if f.Name != "" {
			seen[f.Name] = i
		}
	}
	ti, targetOK := targets[f.Target]
	if !targetOK {
		if f.Target == "" {
			v.addf(path+".target", "required: the name of a target in spec.targets")
		} else {
			v.addf(path+".target", "target %q is not defined in spec.targets", f.Target)
		}
	}

	kd := kindOf(f.Kind)
	for _, k := range kinds {
		switch {
		case k.name == f.Kind && !k.set(f):
			v.addf(path+"."+k.field, "required for kind %s", k.name)
		case k.name != f.Kind && k.set(f) && f.Kind != "":
			v.addf(path+"."+k.field, "only allowed when kind is %s", k.name)
		}
	}
	switch {
	case f.Kind == "":
		v.addf(path+".kind", "required (known kinds: %s)", kindNames())
	case kd == nil:
		v.addf(path+".kind", "unknown fault kind %q (known kinds: %s)", f.Kind, kindNames())
	}
	if kd == nil {
		return
	}
	if kd.needsService && targetOK && s.Targets[ti].Service == "" {
		v.addf(path+".target", "kind %s needs a target with service (the Spring Boot service to attack)", f.Kind)
	}
	if kd.set(f) {
		kd.validate(v, path+"."+kd.field, f, s)
	}
}
