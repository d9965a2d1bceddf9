package serve

import "google.golang.org/grpc"

// registrar registers services on the gRPC server with their handlers
// wrapped to report requests that cannot be decoded (malformed.go). It is
// also what gRPC reflection reads the registered services from.
type registrar struct {
	grpc      *grpc.Server
	malformed *malformedRequests // nil: register handlers as they are (benchmarks)
}

// RegisterService registers impl as the implementation of desc.
func (r registrar) RegisterService(desc *grpc.ServiceDesc, impl any) {
	if r.malformed != nil {
		desc = r.malformed.wrap(desc)
	}
	r.grpc.RegisterService(desc, impl)
}

// GetServiceInfo returns the registered services by name.
func (r registrar) GetServiceInfo() map[string]grpc.ServiceInfo {
	return r.grpc.GetServiceInfo()
}
