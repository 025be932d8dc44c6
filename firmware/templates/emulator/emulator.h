// The hls4mlEmulator interface through which the experiment's software (CMSSW
// L1Trigger, via cms-hls4ml/hls4mlEmulatorExtras) loads a Level-1 network's emulator.
//
// Written by l1ad from the interface's documented API (header hls4ml/emulator.h of
// hls4mlEmulatorExtras): the loader dlopen()s "<model name>.so", looks up the two
// extern "C" factories below, and drives the model as
//     model->prepare_input(input); model->predict(); model->read_result(result);
// Only the abstract interface is declared here (no loader): a library built against this
// header has the same class layout (three pure virtual members and a virtual destructor,
// in this order) as one built against hls4mlEmulatorExtras' header, which can be used
// instead (make EMULATOR_INCLUDE=/path/to/hls4mlEmulatorExtras/include).
#ifndef HLS4ML_EMULATOR_H_
#define HLS4ML_EMULATOR_H_

#include <any>

namespace hls4mlEmulator {

class Model {
  public:
    virtual void prepare_input(std::any input) = 0;
    virtual void predict() = 0;
    virtual void read_result(std::any result) = 0;
    virtual ~Model() = default;
};

// Signatures of the factories every emulator library exports with C linkage:
//   extern "C" hls4mlEmulator::Model* create_model();
//   extern "C" void destroy_model(hls4mlEmulator::Model*);
typedef Model *create_model_cls();
typedef void destroy_model_cls(Model *);

} // namespace hls4mlEmulator

#endif
