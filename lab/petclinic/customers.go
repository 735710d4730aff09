package petclinic

import (
	"net/http"
	"strconv"
)

// customers is customers-service: owners and their pets.
type customers struct {
	owners map[int]Owner
	list   []Owner
}

func newCustomers(r *router) *customers {
	c := &customers{owners: map[int]Owner{}, list: SeedOwners()}
	for _, o := range c.list {
		c.owners[o.ID] = o
	}
	r.controller("GET", "/owners", ownerResource("findAll"), func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, c.list)
	})
	r.controller("GET", "/owners/{ownerId}", ownerResource("findOwner"), c.owner)
	r.controller("GET", "/owners/*/pets/{petId}", Component{Bean: "petResource",
		Class: "org.springframework.samples.petclinic.customers.web.PetResource", Method: "findPet"}, c.pet)
	return c
}

func (c *customers) owner(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("ownerId"))
	if err != nil {
		springError(w, r, http.StatusBadRequest, "MethodArgumentTypeMismatchException")
		return
	}
	o, ok := c.owners[id]
	if !ok {
		springError(w, r, http.StatusNotFound, "ResourceNotFoundException")
		return
	}
	writeJSON(w, http.StatusOK, o)
}

func (c *customers) pet(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("petId"))
	if err != nil {
		springError(w, r, http.StatusBadRequest, "MethodArgumentTypeMismatchException")
		return
	}
	for _, o := range c.list {
		for _, p := range o.Pets {
			if p.ID == id {
				writeJSON(w, http.StatusOK, PetDetails{ID: p.ID, Name: p.Name, Owner: o.FirstName + " " + o.LastName, BirthDate: p.BirthDate, Type: p.Type})
				return
			}
		}
	}
	springError(w, r, http.StatusNotFound, "ResourceNotFoundException")
}

func ownerResource(method string) Component {
	return Component{Bean: "ownerResource", Class: "org.springframework.samples.petclinic.customers.web.OwnerResource", Method: method}
}
