package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tokencart/tokencart/client"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
)

// A cart call spread over three replicas, as the package documentation
// shows. (Compiled, not run: it needs the services of make run.)
func ExampleDial() {
	conn, err := client.Dial("127.0.0.1:8082,127.0.0.1:8083,127.0.0.1:8084", client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	cart := catalogv1.NewCartServiceClient(conn)
	ctx := client.WithToken(context.Background(), "ACCESS_TOKEN")
	resp, err := cart.AddItem(ctx, &catalogv1.AddItemRequest{ProductId: "espresso-blend-1kg", Quantity: 1})
	if err != nil {
		log.Fatal(client.Describe(err))
	}
	fmt.Println(resp.GetCart().GetTotalQuantity())
}

// invalidQuantity is the error catalogsvc returns for AddItem with
// quantity 0, as a client receives it.
func invalidQuantity() error {
	st, _ := status.New(codes.InvalidArgument, "quantity: must be 1 to 999").WithDetails(
		&errdetails.ErrorInfo{Reason: "FIELD_INVALID", Domain: client.ErrorDomain, Metadata: map[string]string{"field": "quantity"}},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "quantity", Description: "must be 1 to 999"}}},
	)
	return st.Err()
}

// rateLimited is the error of a caller over catalogsvc's rate limit.
func rateLimited() error {
	st, _ := status.New(codes.ResourceExhausted, "per-caller rate limit exceeded; retry later").WithDetails(
		&errdetails.ErrorInfo{Reason: "RATE_LIMITED", Domain: client.ErrorDomain},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)},
	)
	return st.Err()
}

func ExampleFieldViolations() {
	for _, v := range client.FieldViolations(invalidQuantity()) {
		fmt.Printf("%s: %s\n", v.GetField(), v.GetDescription())
	}
	// Output: quantity: must be 1 to 999
}

func ExampleRetryDelay() {
	if d, ok := client.RetryDelay(rateLimited()); ok {
		fmt.Println("retry after", d)
	}
	// Output: retry after 1.5s
}

func ExampleReason() {
	switch client.Reason(rateLimited()) {
	case "RATE_LIMITED":
		fmt.Println("slow down")
	default:
		fmt.Println("give up")
	}
	// Output: slow down
}

func ExampleDescribe() {
	fmt.Println(client.Describe(invalidQuantity()))
	fmt.Println(client.Describe(rateLimited()))
	fmt.Println(client.Describe(status.Error(codes.Unavailable, "no replica answers")))
	fmt.Println(client.Describe(errors.New("dial: no address")))
	// Output:
	// quantity: must be 1 to 999 (INVALID_ARGUMENT)
	// per-caller rate limit exceeded; retry later (RESOURCE_EXHAUSTED: RATE_LIMITED; retry in 1.5s)
	// no replica answers (UNAVAILABLE)
	// dial: no address
}
