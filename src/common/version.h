#ifndef HF_COMMON_VERSION_H
#define HF_COMMON_VERSION_H
#define HF_VERSION "0.1.0"
#endif
