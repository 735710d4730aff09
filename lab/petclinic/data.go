// Package petclinic holds stand-ins for the Spring PetClinic microservices
// (api-gateway, customers-service, visits-service) used by the local lab.
// They serve the real endpoints with the real JSON shapes, make the real
// cross-cluster calls and expose the Micrometer/resilience4j metric names
// Spring Boot exposes at /actuator/prometheus.
package petclinic

import (
	"fmt"
	"sort"
	"sync"
)

// PetType is a pet's kind as customers-service returns it.
type PetType struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

// Pet is a pet as customers-service returns it.
type Pet struct {
	ID        int     `json:"id"`
	Name      string  `json:"name"`
	BirthDate string  `json:"birthDate"`
	Type      PetType `json:"type"`
}

// Owner is GET /owners/{ownerId} of customers-service.
type Owner struct {
	ID        int    `json:"id"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Address   string `json:"address"`
	City      string `json:"city"`
	Telephone string `json:"telephone"`
	Pets      []Pet  `json:"pets"`
}

// PetDetails is GET /owners/*/pets/{petId} of customers-service.
type PetDetails struct {
	ID        int     `json:"id"`
	Name      string  `json:"name"`
	Owner     string  `json:"owner"`
	BirthDate string  `json:"birthDate"`
	Type      PetType `json:"type"`
}

// Visit is one visit as visits-service returns it.
type Visit struct {
	ID          int    `json:"id"`
	Date        string `json:"date"`
	Description string `json:"description"`
	PetID       int    `json:"petId"`
}

// Visits is GET /pets/visits?petId=… of visits-service.
type Visits struct {
	Items []Visit `json:"items"`
}

// PetDetailsWithVisits is one pet of the gateway's owner details.
type PetDetailsWithVisits struct {
	ID        int     `json:"id"`
	Name      string  `json:"name"`
	BirthDate string  `json:"birthDate"`
	Type      PetType `json:"type"`
	Visits    []Visit `json:"visits"`
}

// OwnerDetails is GET /api/gateway/owners/{ownerId} of api-gateway.
type OwnerDetails struct {
	ID        int                    `json:"id"`
	FirstName string                 `json:"firstName"`
	LastName  string                 `json:"lastName"`
	Address   string                 `json:"address"`
	City      string                 `json:"city"`
	Telephone string                 `json:"telephone"`
	Pets      []PetDetailsWithVisits `json:"pets"`
}

var (
	cat     = PetType{1, "cat"}
	dog     = PetType{2, "dog"}
	lizard  = PetType{3, "lizard"}
	snake   = PetType{4, "snake"}
	bird    = PetType{5, "bird"}
	hamster = PetType{6, "hamster"}
)

// SeedOwners returns the PetClinic seed owners (10 owners, 13 pets).
func SeedOwners() []Owner {
	return []Owner{
		{1, "George", "Franklin", "110 W. Liberty St.", "Madison", "6085551023", []Pet{{1, "Leo", "2010-09-07", cat}}},
		{2, "Betty", "Davis", "638 Cardinal Ave.", "Sun Prairie", "6085551749", []Pet{{2, "Basil", "2012-08-06", hamster}}},
		{3, "Eduardo", "Rodriquez", "2693 Commerce St.", "McFarland", "6085558763", []Pet{{3, "Rosy", "2011-04-17", dog}, {4, "Jewel", "2010-03-07", dog}}},
		{4, "Harold", "Davis", "563 Friendly St.", "Windsor", "6085553198", []Pet{{5, "Iggy", "2010-11-30", lizard}}},
		{5, "Peter", "McTavish", "2387 S. Fair Way", "Madison", "6085552765", []Pet{{6, "George", "2010-01-20", snake}}},
		{6, "Jean", "Coleman", "105 N. Lake St.", "Monona", "6085552654", []Pet{{7, "Samantha", "2012-09-04", cat}, {8, "Max", "2012-09-04", cat}}},
		{7, "Jeff", "Black", "1450 Oak Blvd.", "Monona", "6085555387", []Pet{{9, "Lucky", "2011-08-06", bird}}},
		{8, "Maria", "Escobito", "345 Maple St.", "Madison", "6085557683", []Pet{{10, "Mulligan", "2007-02-24", dog}}},
		{9, "David", "Schroeder", "2749 Blackhawk Trail", "Madison", "6085559435", []Pet{{11, "Freddy", "2010-03-09", bird}}},
		{10, "Carlos", "Estaban", "2335 Independence La.", "Waunakee", "6085555487", []Pet{{12, "Lucky", "2010-06-24", dog}, {13, "Sly", "2012-06-08", cat}}},
	}
}

// SeedVisits returns the seed visits: the four PetClinic visits plus one
// check-up for every other pet, so that every seed pet has at least one
// visit and an empty visits list always means a degraded answer.
func SeedVisits() []Visit {
	vs := []Visit{
		{1, "2013-01-01", "rabies shot", 7},
		{2, "2013-01-02", "rabies shot", 8},
		{3, "2013-01-03", "neutered", 8},
		{4, "2013-01-04", "spayed", 7},
	}
	id := 5
	for pet := 1; pet <= 13; pet++ {
		if pet == 7 || pet == 8 {
			continue
		}
		vs = append(vs, Visit{id, fmt.Sprintf("2013-02-%02d", pet), "annual check-up", pet})
		id++
	}
	return vs
}

// visitStore is visits-service's in-memory repository.
type visitStore struct {
	mu     sync.Mutex
	visits []Visit
	nextID int
}

func newVisitStore() *visitStore {
	vs := SeedVisits()
	return &visitStore{visits: vs, nextID: len(vs) + 1}
}

func (s *visitStore) byPets(ids []int) []Visit {
	want := make(map[int]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Visit{}
	for _, v := range s.visits {
		if want[v.PetID] {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (s *visitStore) add(v Visit) Visit {
	v.ID = s.reserveID()
	s.put(v)
	return v
}

// reserveID hands out the next visit ID.
func (s *visitStore) reserveID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextID
	s.nextID++
	return id
}

// put stores v under the ID it already has.
func (s *visitStore) put(v Visit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.visits = append(s.visits, v)
}
