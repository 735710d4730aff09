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
	r.handle("GET", "/owners", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, c.list)
	})
	r.handle("GET", "/owners/{ownerId}", c.owner)
	r.handle("GET", "/owners/*/pets/{petId}", c.pet)
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
